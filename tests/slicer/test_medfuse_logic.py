"""The module's runner driving the real ``medfuse fuse`` in a child process, on NRRD files as Slicer writes them."""

from __future__ import annotations

import numpy as np
import pytest
from MedFuseLib import FusionError, FusionJob, MedFuseParameters

from medfuse.io import load_volume, save_volume
from medfuse.volume import Volume

AFFINE = np.array([[-1.0, 0, 0, 20], [0, -1.2, 0, 30], [0, 0, 1.5, -10], [0, 0, 0, 1]])


def _write_pair(job, moving_scale=100.0):
    rng = np.random.default_rng(0)
    a = rng.random((16, 18, 12)).astype(np.float32) * 100
    a[4:12, 5:13, 3:9] += 400  # a "head"
    save_volume(Volume(a, AFFINE, modality="MR"), job.reference_path)
    save_volume(Volume(np.roll(a, 2, axis=0) * moving_scale / 100, AFFINE), job.moving_path)


def test_mri_pair_fused_on_reference_grid(tmp_path):
    params = MedFuseParameters(reference_modality="MR", moving_modality="MR", method="mean", register=False)
    progress = []
    job = FusionJob(params, workdir=tmp_path / "job", on_progress=lambda p, s: progress.append((p, s)))
    with job:
        _write_pair(job)
        outputs = job.run(timeout=300)
        # progress is the pipeline's own callback, step for step: the same run in process reports the same steps
        from medfuse.pipeline import FusionOptions, fuse_files

        steps = []
        fuse_files(job.reference_path, job.moving_path, tmp_path / "in_process.nrrd",
                   FusionOptions(method="mean", register=False, qc=False, reference={"modality": "MR"},
                                 moving={"modality": "MR"}), progress=lambda p, s: steps.append((p, s)))
        # the runner's own start and end around exactly medfuse's PROGRESS lines
        assert progress == [(2, "starting medfuse")] + steps + [(100, "done")], "not only medfuse's PROGRESS lines"
        assert [line for line in job.log if line.startswith("PROGRESS ")] == [f"PROGRESS {p} {s}" for p, s in steps]
        fused = load_volume(outputs["fused"])
        np.testing.assert_allclose(fused.affine, AFFINE, atol=1e-4)
        assert fused.shape == (16, 18, 12) and fused.rgb is None
        quantitative = load_volume(outputs["quantitative"])
        np.testing.assert_allclose(quantitative.affine, AFFINE, atol=1e-4)
        assert "transform" not in outputs  # not registered
        percents = [p for p, _ in progress]
        assert percents[0] == 2 and percents[-1] == 100 and percents == sorted(percents)
    assert not (tmp_path / "job").exists()


@pytest.mark.slow  # ~40 s on a busy 2-core machine: the child imports torch and MONAI
def test_pet_fused_in_colour_with_quantitative_volume(tmp_path):
    params = MedFuseParameters(reference_modality="MR", moving_modality="PT", method="mean", register=False)
    with FusionJob(params, workdir=tmp_path / "job") as job:
        _write_pair(job, moving_scale=5.0)
        outputs = job.run(timeout=300)
        fused = load_volume(outputs["fused"])
        assert fused.rgb is not None and fused.rgb.shape[-1] == 3  # Slicer loads it as a vector (RGB) volume
        np.testing.assert_allclose(fused.affine, AFFINE, atol=1e-4)
        assert load_volume(outputs["quantitative"]).shape == (16, 18, 12)


@pytest.mark.slow
def test_medfuse_error_is_its_one_line(tmp_path):
    params = MedFuseParameters(reference_modality="MR", moving_modality="MR", method="mean", register=False)
    with FusionJob(params, workdir=tmp_path / "job") as job:
        job.moving_path.write_text("not an image")
        with pytest.raises(FusionError) as err:
            job.run(timeout=300)
        message = str(err.value)
        # stderr merged into stdout: medfuse's one line is found among its log and PROGRESS lines, word for word
        (line,) = [line for line in job.log if line.startswith("medfuse fuse: error: ")]
        assert message == line[len("medfuse fuse: error: "):] and "\n" not in message and "reference" in message
        assert any(line.startswith("PROGRESS ") for line in job.log)  # stdout lines in the same stream
    assert not (tmp_path / "job").exists()
