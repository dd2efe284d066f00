"""The output plan of a fusion: where each output goes, checked before anything is read, and written at the end.

One plan for both kinds of output: files (the fused image in the format its extension names,
:mod:`medfuse.io.formats`; ``<stem>_moving<ext>`` the moving scan in its units; ``<stem>_qc.png``;
``<stem>.json``) and DICOM (``out`` and ``<out>_moving`` derived series, :mod:`medfuse.io.dicom.writer`). Every
file is written atomically; the independent writers run on threads (gzip releases the GIL).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medfuse.errors import UnsupportedInputError
from medfuse.pipeline.options import FusionOptions
from medfuse.volume import Volume

__all__ = ["OutputPlan", "quantitative_path", "write_transform", "fusion_record", "input_records", "slice_plane",
           "transform_note"]

log = logging.getLogger("medfuse.pipeline")

def quantitative_path(out) -> Path:
    """Where a fusion writes the moving scan in its units: ``<out stem>_moving<same extension>``."""
    from medfuse.io.atomic import full_suffix

    out = Path(out)
    suffix = full_suffix(out)
    return out.with_name(out.name[: -len(suffix)] + "_moving" + suffix)


@dataclass(frozen=True)
class OutputPlan:
    """Where the outputs of one fusion go.

    Attributes:
        kind: ``"file"`` or ``"dicom"`` (``fused`` and ``quantitative`` are then series folders).
        fused: the fused image.
        quantitative: the moving scan on the reference grid in its own units, or None.
        qc: the QC picture, or None.
        sidecar: the sidecar, or None.
        transform: the transform file, or None.
        force: existing outputs may be replaced.
        compress_level: gzip level of ``.nii.gz`` outputs (None: the default).
    """

    kind: str
    fused: Path
    quantitative: Path | None
    qc: Path | None
    sidecar: Path | None
    transform: Path | None
    force: bool = False
    compress_level: int | None = None

    @classmethod
    def for_fusion(cls, out, options: FusionOptions) -> OutputPlan:
        """The plan of ``out`` under ``options``, every path checked (extension, existence unless ``force``).

        Raises:
            UnsupportedInputError: an extension medfuse cannot write, or one that contradicts ``out_format``.
            OutputExistsError: an output exists and ``options.force`` is false.
        """
        from medfuse.io.atomic import check_output, full_suffix
        from medfuse.io.formats import FORMATS, SLICE_SUFFIXES, VOLUME_SUFFIXES
        from medfuse.report.sidecar import sidecar_path

        out = Path(out)
        dicom = options.out_format == "dicom"
        if dicom:
            qc = out.with_name(out.name + "_qc.png") if options.qc is True else (options.qc or None)
            quantitative = out.with_name(out.name + "_moving") if options.quantitative is True else (
                options.quantitative or None)
        else:
            suffix = full_suffix(out)
            if options.out_format is not None and suffix not in FORMATS[options.out_format]:
                wanted = " or ".join(FORMATS[options.out_format])
                raise UnsupportedInputError(f"{out}: the {options.out_format} output format writes {wanted} files; "
                                            "give the output such a name", option="out_format")
            if suffix not in (*VOLUME_SUFFIXES, *SLICE_SUFFIXES):
                raise UnsupportedInputError(
                    f"{out}: cannot write {suffix or 'a file without extension'!r}; give the output a name ending in "
                    f"{', '.join(VOLUME_SUFFIXES)} (volumes) or {', '.join(SLICE_SUFFIXES)} (2D slices)")
            qc = out.with_name(out.name[: -len(suffix)] + "_qc.png") if options.qc is True else (options.qc or None)
            quantitative = None
            if options.quantitative is True and suffix not in SLICE_SUFFIXES:
                quantitative = quantitative_path(out)
            elif options.quantitative and options.quantitative is not True:  # True on a 2D slice output: none
                quantitative = Path(options.quantitative)
                if full_suffix(quantitative) not in VOLUME_SUFFIXES:
                    raise UnsupportedInputError(f"{quantitative}: the quantitative volume is written as "
                                                f"{', '.join(VOLUME_SUFFIXES)}; give it such a name")
        plan = cls("dicom" if dicom else "file", out, quantitative, qc,
                   sidecar_path(out) if options.sidecar else None, options.transform_out, options.force,
                   options.compress_level)
        if dicom:
            from medfuse.io.dicom.writer import check_dicom_output

            for folder in (plan.fused, plan.quantitative):
                if folder is not None:
                    check_dicom_output(folder, plan.force)
            files = (plan.qc, plan.sidecar, plan.transform)
        else:
            files = (plan.fused, plan.quantitative, plan.qc, plan.sidecar, plan.transform)
        for target in files:
            if target is not None:
                check_output(target, plan.force)
        return plan

    def check_input(self, reference: Volume) -> None:
        """Refuse a plan that cannot hold this reference's result (a 3D volume as a slice image, 2D as DICOM)."""
        from medfuse.io.atomic import full_suffix
        from medfuse.io.formats import SLICE_SUFFIXES, VOLUME_SUFFIXES

        if self.kind == "dicom" and reference.ndim != 3:
            raise UnsupportedInputError(f"{self.fused}: DICOM output holds 3D volumes; write fused 2D slices as .png",
                                        option="out_format")
        if self.kind == "file" and reference.ndim == 3 and full_suffix(self.fused) in SLICE_SUFFIXES:
            raise UnsupportedInputError(
                f"{self.fused}: a 3D result cannot be written as {full_suffix(self.fused)}; give the output a volume "
                f"name ending in {', '.join(VOLUME_SUFFIXES)}")
        if self.kind == "file" and reference.ndim == 2 and full_suffix(self.fused) not in SLICE_SUFFIXES:
            log.info("2D slices written to %s as a one-slice volume (values 0..255)", self.fused.name)

    def write(self, result, reference: Volume, moving: Volume, *, inputs: dict[str, Any] | None = None
              ) -> dict[str, Path]:
        """Write every planned output of ``result`` (a :class:`~medfuse.pipeline.FusionResult`) and its sidecar.

        Args:
            reference, moving: the inputs as read (for the sidecar and the DICOM modules).
            inputs: the sidecar's records of the inputs, when made before (their voxels' hashes; then
                ``reference`` and ``moving`` need only their grid and metadata).

        Returns:
            ``{"fused", "quantitative", "transform", "qc", "sidecar"}`` -> paths, for what was written.
        """
        extra: dict[str, Any] = {}
        if self.kind == "dicom":
            written, extra = self._write_dicom(result, reference, moving)
        else:
            from medfuse.io import save_volume

            jobs = {"fused": lambda: {"fused": save_volume(result.fused, self.fused, force=self.force,
                                                           compress_level=self.compress_level)}}
            if self.quantitative is not None and result.quantitative is not None:
                jobs["quantitative"] = lambda: {"quantitative": save_volume(
                    result.quantitative, self.quantitative, force=self.force, compress_level=self.compress_level)}
            if self.transform is not None or self.qc is not None:  # else no thread pool (fuse-dir: ~5 ms a pair)
                jobs["extras"] = lambda: self._write_transform_and_qc(result)
            written = _run_concurrently(jobs)
        if self.sidecar is not None:
            from medfuse.report.sidecar import write_sidecar

            written["sidecar"] = write_sidecar(self.fused, fusion_record(result, reference, moving, self, written,
                                                                         inputs=inputs, **extra), force=self.force)
        return written

    def _write_transform_and_qc(self, result) -> dict[str, Path]:
        written = {}
        if self.transform is not None:
            written["transform"] = write_transform(result, self.transform, self.force)
        if self.qc is not None:
            from medfuse.report.qc import save_qc_figure

            written["qc"] = save_qc_figure(result, self.qc, force=self.force)
        return written

    def _write_dicom(self, result, ref: Volume, mov: Volume) -> tuple[dict[str, Path], dict[str, Any]]:
        from medfuse import __version__
        from medfuse.io.dicom.writer import new_uid, write_dicom_series

        alignment = result.alignment
        how = ("registered (" + str(alignment.get("transform", result.options.registration_type))
               + ", mutual information)" if alignment.get("registered")
               else "resampled in world coordinates (not registered)")
        derivation = (f"medfuse {__version__}: {mov.modality} {how} onto the {ref.modality} reference grid, fused "
                      f"with method '{result.method}'" + (f", colour map {result.colour['colormap']}"
                                                           if result.colour else ""))
        study = None if ref.meta.get("dicom_uids") is not None else new_uid()  # one study for both series
        sources = (ref.meta, mov.meta)
        fused_info = write_dicom_series(
            result.fused, self.fused, reference_meta=ref.meta, sources=sources, kind="FUSION", modality="OT",
            description=f"medfuse fused {result.method}", derivation=derivation, series_number=9001, study_uid=study,
            force=self.force,
        )
        written = {"fused": fused_info["folder"]}
        quant_info = None
        if self.quantitative is not None and result.quantitative is not None:
            units = result.quantitative.meta.get("units")
            quant_info = write_dicom_series(
                result.quantitative, self.quantitative, reference_meta=ref.meta, sources=sources,
                kind="QUANTITATIVE", modality=mov.modality or "OT",
                description=f"medfuse {mov.modality} on reference grid ({units})"[:64],
                derivation=f"medfuse {__version__}: {mov.modality} {how} onto the {ref.modality} reference grid, in "
                           f"its own units ({units})",
                series_number=9002, units=units, study_uid=fused_info["study_uid"],
                frame_of_reference_uid=fused_info["frame_of_reference_uid"], force=self.force,
            )
            written["quantitative"] = quant_info["folder"]
        written.update(self._write_transform_and_qc(result))
        record = {
            "sop_class": "Secondary Capture Image Storage (1.2.840.10008.5.1.4.1.1.7)",
            "image_type": "DERIVED\\SECONDARY",
            "series": {"fused": {"folder": self.fused.name, "files": fused_info["n_files"],
                                 "storage": "RGB 8-bit" if result.fused.rgb is not None else "uint16 with rescale"}},
            "patient_and_study": (
                "anonymous placeholders (PatientName/PatientID ANONYMOUS, a new StudyInstanceUID and "
                "FrameOfReferenceUID): the reference is not DICOM" if fused_info["placeholders"] else
                "the reference series' patient and study modules, StudyInstanceUID and FrameOfReferenceUID"),
            "source_image_sequence": "every instance of both inputs" if any(
                m.get("dicom_uids") is not None for m in sources) else "none (no input is DICOM)",
            "uids": "new SOPInstanceUIDs and SeriesInstanceUIDs of the form 2.25.<uuid4>",
        }
        if quant_info is not None:
            record["series"]["quantitative"] = {
                "folder": self.quantitative.name, "files": quant_info["n_files"], "storage": "uint16 with rescale",
                "rescale": quant_info["rescale"], "units": result.quantitative.meta.get("units")}
        return written, {"output_format": "dicom", "dicom": record}


def write_transform(result, path: Path, force: bool) -> Path:
    """Write the registration transform; the identity when not registered (the moving scan was put on the reference
    grid through the world coordinates as they are)."""
    import SimpleITK as sitk

    from medfuse.registration import save_transform

    transform = (result.registration.transform if result.registration is not None
                 else sitk.Transform(result.reference.ndim, sitk.sitkIdentity))
    return save_transform(transform, path, force=force)


def transform_note(alignment: dict[str, Any], written: dict[str, Path]) -> dict[str, Any]:
    """The alignment record with the transform file named, and said to be the identity when not registered."""
    alignment = dict(alignment)
    if "transform" in written:
        alignment["transform_file"] = written["transform"].name
        if not alignment.get("registered"):
            alignment["transform_note"] = ("identity (ITK, reference LPS -> moving LPS): the inputs were not "
                                           "registered: " + str(alignment.get("reason", "")))
    return alignment


def fusion_record(result, ref: Volume, mov: Volume, plan: OutputPlan, written: dict[str, Path],
                  inputs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The sidecar of a fusion: the provenance (steps), method and weights, inputs, registration, slice plane,
    overrides, outputs. ``inputs``: :func:`input_records`, when made before (default: made here)."""
    from medfuse.report.sidecar import file_sha256, fused_image_record, quantitative_record

    alignment = transform_note(result.alignment, written)
    options = result.options or FusionOptions()
    result.provenance.add("write", outputs={k: Path(v).name for k, v in written.items()})
    record = result.provenance.record(
        output=plan.fused.name,
        method=result.method,
        weights=None if result.weights is None else {"file": result.weights.name, "sha256": file_sha256(result.weights)},
        inputs=inputs if inputs is not None else input_records(result, ref, mov),
        registration=alignment,
        pair_check=result.pair_check,
        slice_plane=slice_plane(ref),
        options=options.record(),
        overrides=options.overrides(alignment, result.pair_check),
        ignored_options=list(result.ignored_options),
        timings_s={k: round(v, 3) for k, v in result.timings.items()},
        outputs={k: Path(v).name for k, v in written.items()},
        **extra,
    )
    if "quantitative" in written and plan.kind == "file":
        record["quantitative"] = quantitative_record(result.quantitative, written["quantitative"])
    record.update(fused_image_record(result.fused.rgb is not None, result.fused.ndim, result.colour))
    return record


def input_records(result, ref: Volume, mov: Volume, *, reference_sha256: str | None = None) -> dict[str, Any]:
    """The sidecar's records of the two inputs as read (grid, format, normalization, hash of the voxels;
    ``reference_sha256``: the reference's, taken before its voxels were normalized in place)."""
    from medfuse.report.sidecar import volume_record

    return {"reference": volume_record(ref, result.reference, sha256=reference_sha256),
            "moving": volume_record(mov, result.moving)}


def slice_plane(reference: Volume) -> dict[str, Any]:
    """The plane 2D methods ran in (the axial plane, whatever the storage order)."""
    if reference.ndim != 3:
        return {"slice_axis": None, "note": "2D input: one slice"}
    import nibabel.orientations as nio

    from medfuse.volume import slice_axis

    return {"slice_axis": int(slice_axis(reference.affine)),
            "reference_orientation": "".join(nio.aff2axcodes(reference.affine))}


def _run_concurrently(jobs: dict[str, Any]) -> dict[str, Path]:
    """Run independent output writers (each atomic) on threads and merge their ``{name: path}`` results.

    A 3D fusion writes two ~50 MB volumes and a QC picture; gzip compression releases the GIL, so on
    two cores the writes overlap (``benchmarks/startup.py``). The first error is raised after every
    writer has finished (none is left half-way: each writes a temporary file and renames it).
    """
    from concurrent.futures import ThreadPoolExecutor

    if len(jobs) == 1:
        return dict(next(iter(jobs.values()))())
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
    written: dict[str, Path] = {}
    for future in futures.values():
        written.update(future.result())
    return written

