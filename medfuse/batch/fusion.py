"""What one case runs: the pipeline's steps, with its pair check, on two inputs or more; its label maps carried.

- Two inputs: :func:`medfuse.pipeline.fuse_files`, as ``medfuse fuse`` runs it.
- Three or more (BraTS ``--sequences all``): the reference with each other input is one pair of the pipeline:
  read (:func:`~medfuse.pipeline.load_inputs`), checked (:func:`medfuse.pair_check.check_pair`: only
  ``accept_mismatch`` overrides it), aligned and normalized (:func:`~medfuse.pipeline.prepare_pair`); then all are
  fused into one image by :class:`medfuse.transforms.FuseImages` with the batch's strategy. The sidecar is the
  pipeline's :class:`~medfuse.pipeline.Provenance` record, with the weights' SHA-256.

Each function writes into the case's staging folder and returns what the case's row needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medfuse.batch.settings import BatchSettings

__all__ = ["fused_name", "fuse_pair", "fuse_many", "carry_label", "MULTI_INPUT_RULES"]

#: what each multi-input strategy does, in the sidecar's words
MULTI_INPUT_RULES = {
    "mean_of_pairs": "mean_of_pairs: the reference fused with each other input, the fusions averaged voxel by voxel",
    "sequential": "sequential: fuse(fuse(reference, 2nd), 3rd)... in the order of 'inputs'",
}


def fused_name(case) -> str:
    """The fused output's file name in the case folder."""
    return "fused.png" if case.is_2d else "fused.nii.gz"


def fuse_pair(case, staging: Path, settings: BatchSettings) -> dict[str, Any]:
    """Two inputs: the pipeline's :func:`~medfuse.pipeline.fuse_files`, unchanged."""
    from medfuse.pipeline import fuse_files

    (ref_role, ref_path), (mov_role, mov_path) = case.inputs.items()
    written = fuse_files(ref_path, mov_path, staging / fused_name(case),
                         settings.fusion_options(case, (ref_role, mov_role)))
    return {"kind": "pair", "case": case, "fused": written["fused"], "sidecar": Path(written["sidecar"]).name,
            "quantitative": written.get("quantitative"), "outputs": [Path(p).name for p in written.values()],
            "reference_volume": None, "arrays": None}


def _weights_record(paths: list[Path]) -> dict[str, str] | list[dict[str, str]] | None:
    """The network checkpoints used, by file name and SHA-256 (as the sidecar of ``medfuse fuse`` has them)."""
    from medfuse.report.sidecar import file_sha256

    records = [{"file": p.name, "sha256": file_sha256(p)} for p in dict.fromkeys(paths)]
    return None if not records else records[0] if len(records) == 1 else records


def fuse_many(case, staging: Path, settings: BatchSettings) -> dict[str, Any]:
    """Three or more inputs: each (reference, other input) pair through the pipeline's steps, then one fusion.

    Raises:
        MedfuseError: as the pipeline raises it, with ``case_input`` set to the case's input it is about.
    """
    import time

    import numpy as np

    from medfuse.errors import MedfuseError
    from medfuse.fusion import available_methods, pair_for_modality
    from medfuse.io import save_volume
    from medfuse.pair_check import check_pair
    from medfuse.pipeline import FusionResult, Provenance, default_method, load_inputs, prepare_pair, role_label
    from medfuse.report.sidecar import fused_image_record, volume_record, write_sidecar
    from medfuse.transforms.array import FuseImages, to_metatensor
    from medfuse.volume import Volume

    roles = list(case.inputs)
    first = roles[0]
    provenance = Provenance("batch")
    timings = {"register": 0.0, "normalize": 0.0, "fuse": 0.0}
    ref = ref_n = None
    volumes, normalized, alignment, pair_checks, overrides = {}, {}, {}, {}, []
    for role in roles[1:]:
        options = settings.fusion_options(case, (first, role))
        paths = (case.inputs[first], case.inputs[role])
        try:
            read_ref, volumes[role] = load_inputs(*paths, options)
            ref = read_ref if ref is None else ref
            pair_checks[role] = check_pair(ref, volumes[role], accept_mismatch=options.accept_mismatch, paths=paths,
                                           names=(role_label("reference"), role_label("moving")))
            provenance.add("pair_check", input=role, **pair_checks[role])
            prepared = prepare_pair(ref, volumes[role], options)
        except MedfuseError as err:
            err.case_input = first if err.role == "reference" else role
            raise
        ref_n, normalized[role], alignment[role] = prepared.reference, prepared.moving, dict(prepared.alignment)
        provenance.add("align", input=role, **alignment[role])
        provenance.add("normalize", input=role, reference=ref_n.meta.get("normalization"),
                       moving=normalized[role].meta.get("normalization"))
        for k, v in prepared.timings.items():
            timings[k] = timings.get(k, 0.0) + v
        overrides += [o for o in options.overrides(alignment[role], pair_checks[role]) if o not in overrides]
    method = settings.method or default_method(volumes[roles[1]])
    kind = available_methods()[method]
    weights = [Path(settings.weights)] if settings.weights is not None else []
    if kind == "network" and not weights:
        from medfuse.inference import shipped_weights_path

        weights = [shipped_weights_path(method, pair_for_modality(volumes[r].modality)) for r in roles[1:]]
    t0 = time.perf_counter()
    fuse = FuseImages(method, weights=settings.weights, device=settings.device, strategy=settings.strategy)
    fused_mt = fuse(to_metatensor(ref_n), *(to_metatensor(normalized[r]) for r in roles[1:]))
    fused = np.asarray(fused_mt.detach().cpu().numpy() if hasattr(fused_mt, "detach") else fused_mt)[0]
    timings["fuse"] = time.perf_counter() - t0
    provenance.add("fuse", method=method, kind=kind, strategy=settings.strategy,
                   weights=[p.name for p in dict.fromkeys(weights)] or None)
    from medfuse import __version__

    fused_vol = Volume(np.asarray(fused, dtype=np.float32), ref.affine, modality=ref.modality,
                       meta={"fusion_method": method, "format": ref.meta.get("format"),
                             "medfuse_description": f"medfuse {__version__} fused {method} {len(roles)} inputs"})
    out = staging / fused_name(case)
    written = {"fused": save_volume(fused_vol, out)}
    if settings.qc:  # the QC picture shows the reference, the first other input and the fusion
        from medfuse.report.qc import save_qc_figure

        second = roles[1]
        qc_result = FusionResult(fused_vol, ref_n, normalized[second], method, None, timings, alignment[second],
                                 reference_mask=prepared.reference_mask)  # the statistics' mask, not made again
        written["qc"] = save_qc_figure(qc_result, out.with_name("fused_qc.png"))
    provenance.add("write", outputs={k: Path(v).name for k, v in written.items()})
    record = provenance.record(
        output=out.name, method=method, weights=_weights_record(weights),
        multi_input={"inputs": roles, "reference": first, "strategy": settings.strategy,
                     "rule": MULTI_INPUT_RULES[settings.strategy]},
        inputs={r: volume_record(ref if r == first else volumes[r], ref_n if r == first else normalized[r])
                for r in roles},
        registration=alignment, pair_check=pair_checks, overrides=overrides,
        timings_s={k: round(v, 3) for k, v in timings.items()},
        outputs={k: Path(v).name for k, v in written.items()},
        **fused_image_record(fused_vol.rgb is not None, fused_vol.ndim, None),
    )
    written["sidecar"] = write_sidecar(out, record)
    arrays = {"reference": ref.array, "others": {r: normalized[r].array for r in roles[1:]}, "fused": fused,
              "modalities": case.modalities, "normalized_reference": ref_n.array}
    return {"kind": "many", "case": case, "fused": written["fused"], "sidecar": Path(written["sidecar"]).name,
            "quantitative": None, "outputs": [Path(p).name for p in written.values()], "reference_volume": ref,
            "arrays": arrays}


def carry_label(path: Path, reference, target: Path) -> str:
    """Resample a label map onto the reference grid with nearest neighbour and write it (integers)."""
    import nibabel as nib
    import numpy as np

    from medfuse.io import load_volume
    from medfuse.io.atomic import atomic_output
    from medfuse.registration import resample_to_reference

    labels = load_volume(path, check=False)
    if reference is None:
        raise ValueError("internal: the reference grid is needed to carry a label map")
    if labels.same_grid(reference):
        values = labels.array
    else:
        values = resample_to_reference(labels, reference, interpolation="nearest", default_value=0.0).array
    values = np.rint(values)
    dtype = np.uint8 if values.min() >= 0 and values.max() <= 255 else np.int16
    img = nib.Nifti1Image(values.astype(dtype), reference.affine)
    img.set_sform(reference.affine, code=1)
    img.set_qform(reference.affine, code=1)
    with atomic_output(target) as tmp:
        nib.save(img, str(tmp))
    return target.name
