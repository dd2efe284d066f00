"""The command line, run through ``medfuse.cli.main`` as a user would."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from medfuse.cli import main
from medfuse.io import load_volume


def _pair(folder, colour=True, shape=(64, 48)):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    mri = rng.integers(0, 256, shape).astype(np.uint8)
    Image.fromarray(mri).save(folder / "mri.png")
    if colour:
        pet = rng.integers(0, 256, (*shape, 3)).astype(np.uint8)
        Image.fromarray(pet).save(folder / "pet.png")
        return folder / "mri.png", folder / "pet.png"
    ct = rng.integers(0, 256, shape).astype(np.uint8)
    Image.fromarray(ct).save(folder / "ct.png")
    return folder / "mri.png", folder / "ct.png"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "medfuse" in capsys.readouterr().out


def test_fuse_2d_gray_max(tmp_path, capsys):
    mri, ct = _pair(tmp_path / "in", colour=False)
    out = tmp_path / "fused.png"
    assert main(["fuse", "--reference", str(mri), "--moving", str(ct), "--out", str(out), "--method", "max"]) == 0
    fused = np.asarray(Image.open(out))
    expected = np.maximum(np.asarray(Image.open(mri)), np.asarray(Image.open(ct)))
    np.testing.assert_array_equal(fused, expected)
    assert (tmp_path / "fused_qc.png").is_file()
    assert "fused:" in capsys.readouterr().out


def test_fuse_2d_colour_keeps_chroma(tmp_path):
    mri, pet = _pair(tmp_path / "in", colour=True)
    out = tmp_path / "fused.png"
    assert main(["fuse", "--reference", str(mri), "--moving", str(pet), "--out", str(out), "--method", "mean",
                 "--no-qc"]) == 0
    img = Image.open(out)
    assert img.mode == "RGB" and img.size == (48, 64)
    fused_y = np.asarray(img.convert("YCbCr"), dtype=float)[..., 0]
    mri_y = np.asarray(Image.open(mri), dtype=float)
    pet_y = np.asarray(Image.open(pet).convert("YCbCr"), dtype=float)[..., 0]
    # the luminance is the fused one (within the rounding of two colour conversions)
    assert np.abs(fused_y - (mri_y + pet_y) / 2).mean() < 2.0
    pet_cbcr = np.asarray(Image.open(pet).convert("YCbCr"), dtype=float)[..., 1:]
    fused_cbcr = np.asarray(img.convert("YCbCr"), dtype=float)[..., 1:]
    assert np.corrcoef(pet_cbcr.ravel(), fused_cbcr.ravel())[0, 1] > 0.8
    assert not (tmp_path / "fused_qc.png").exists()


def test_fuse_refuses_overwrite_and_reports_one_line(tmp_path, capsys):
    mri, ct = _pair(tmp_path / "in", colour=False)
    out = tmp_path / "fused.png"
    out.write_bytes(b"precious")
    code = main(["fuse", "--reference", str(mri), "--moving", str(ct), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--force" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == b"precious"
    assert main(["fuse", "--reference", str(mri), "--moving", str(ct), "--out", str(out), "--force",
                 "--method", "mean"]) == 0


def test_fuse_mismatched_slices(tmp_path, capsys):
    mri, _ = _pair(tmp_path / "a", colour=False, shape=(64, 48))
    _, ct = _pair(tmp_path / "b", colour=False, shape=(60, 48))
    assert main(["fuse", "--reference", str(mri), "--moving", str(ct), "--out", str(tmp_path / "f.png")]) == 2
    assert "pre-aligned" in capsys.readouterr().err


def test_unknown_method_suggests(tmp_path, capsys):
    mri, ct = _pair(tmp_path / "in", colour=False)
    code = main(["fuse", "--reference", str(mri), "--moving", str(ct), "--out", str(tmp_path / "f.png"),
                 "--method", "maxx"])
    assert code == 2
    assert "maxx" in capsys.readouterr().err


def test_info(tmp_path, capsys):
    mri, _ = _pair(tmp_path / "in", colour=False)
    assert main(["info", str(mri)]) == 0
    out = capsys.readouterr().out
    assert "shape: (64, 48)" in out and "modality: MR" in out


def test_fuse_dir_resumes_and_records(tmp_path, capsys):
    data = tmp_path / "data"
    _pair(data / "ct_mri" / "p1", colour=False)
    _pair(data / "pet_mri" / "p2", colour=True)
    (data / "spect_mri" / "broken").mkdir(parents=True)
    (data / "spect_mri" / "broken" / "mri.png").write_bytes(b"not a png")
    (data / "spect_mri" / "broken" / "spect.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    code = main(["fuse-dir", str(data), "--out", str(out), "--method", "max"])
    assert code == 1  # one pair failed, the others were done
    assert (out / "ct_mri" / "p1" / "fused.png").is_file()
    assert Image.open(out / "pet_mri" / "p2" / "fused.png").mode == "RGB"
    rows = list(csv.DictReader((out / "fuse-dir-log.csv").open()))
    assert {r["key"]: r["status"] for r in rows} == {"ct_mri/p1": "ok", "pet_mri/p2": "ok", "spect_mri/broken": "failed"}
    assert "Traceback" not in rows[-1]["message"]
    mtime = (out / "ct_mri" / "p1" / "fused.png").stat().st_mtime_ns
    main(["fuse-dir", str(data), "--out", str(out), "--method", "max"])
    assert (out / "ct_mri" / "p1" / "fused.png").stat().st_mtime_ns == mtime  # resumed, not redone
    assert "skipped 2" in capsys.readouterr().out


@pytest.mark.harvard
def test_fuse_dir_on_harvard_sample(tmp_path, harvard_dir):
    """A few real AANLIB pairs per task: max fusion, colour kept for PET/SPECT, same size as the input."""
    import shutil

    data = tmp_path / "data"
    for task in ("ct_mri", "pet_mri", "spect_mri"):
        for pair in sorted((harvard_dir / task).iterdir())[:2]:
            shutil.copytree(pair, data / task / pair.name)
    out = tmp_path / "out"
    assert main(["fuse-dir", str(data), "--out", str(out), "--method", "max"]) == 0
    for fused in out.glob("*/*/fused.png"):
        task, pair = fused.parts[-3], fused.parts[-2]
        src = load_volume(data / task / pair / "mri.png")
        img = Image.open(fused)
        assert img.size == (src.shape[1], src.shape[0])
        assert img.mode == ("L" if task == "ct_mri" else "RGB")
