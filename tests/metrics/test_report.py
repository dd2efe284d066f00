"""``medfuse evaluate`` and ``medfuse evaluate-dir`` through the CLI entry point."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from medfuse.cli import main
from medfuse.metrics import compute_metrics


def _png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def slice_case(tmp_path, images):
    a, b = (np.round(x) for x in images)
    f = np.round(np.maximum(a, b))
    return _png(tmp_path / "mri.png", a), _png(tmp_path / "ct.png", b), _png(tmp_path / "fused.png", f), (a, b, f)


def test_evaluate_json_is_an_object_of_numbers(slice_case, capsys):
    pa, pb, pf, (a, b, f) = slice_case
    assert main(["evaluate", "--sources", str(pa), str(pb), "--fused", str(pf), "--metrics", "EN,SD,MI,Qabf"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["EN", "SD", "MI", "Qabf"]
    assert out == pytest.approx(compute_metrics((a, b), f, ["EN", "SD", "MI", "Qabf"]))


def test_evaluate_csv_and_markdown(slice_case, capsys):
    pa, pb, pf, _ = slice_case
    main(["evaluate", "--sources", str(pa), str(pb), "--fused", str(pf), "--metrics", "EN,MSE", "--format", "csv"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "EN,MSE" and len(lines[1].split(",")) == 2
    main(["evaluate", "--sources", str(pa), str(pb), "--fused", str(pf), "--metrics", "EN,MSE", "--format", "md"])
    md = capsys.readouterr().out
    assert "| EN |" in md and "| MSE |" in md and "lower" in md


def test_evaluate_colour_images_use_pillow_luminance(tmp_path, images, capsys):
    from PIL import Image

    a, b = (np.round(x).astype(np.uint8) for x in images)
    rgb = np.stack([b, b // 2, 255 - b], axis=-1)  # a pseudo-colour 'PET'
    fused_rgb = np.stack([np.maximum(a, b), a, b], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "pet.png")
    Image.fromarray(fused_rgb).save(tmp_path / "fused.png")
    _png(tmp_path / "mri.png", a)
    y = [np.asarray(Image.fromarray(x).convert("YCbCr"))[..., 0].astype(float) for x in (rgb, fused_rgb)]
    main(["evaluate", "--sources", str(tmp_path / "mri.png"), str(tmp_path / "pet.png"),
          "--fused", str(tmp_path / "fused.png"), "--metrics", "MI,SSIM,EN"])
    out = json.loads(capsys.readouterr().out)
    assert out == pytest.approx(compute_metrics((a.astype(float), y[0]), y[1], ["MI", "SSIM", "EN"]), rel=1e-6)


def test_evaluate_volumes_and_grid_mismatch(tmp_path, capsys):
    from medfuse.io import save_volume
    from medfuse.volume import Volume

    rng = np.random.default_rng(0)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in (48, 48, 6)), indexing="ij")
    head = (x / 0.8) ** 2 + (y / 0.7) ** 2 < 1
    mri = np.where(head, 800 + 200 * x + 20 * rng.normal(size=head.shape), 0)
    pet = np.where(head, 5 + 3 * y + rng.random(head.shape), 0)
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    paths = {}
    for name, arr in {"mri": mri, "pet": pet, "fused": mri / mri.max() + pet / pet.max()}.items():
        paths[name] = save_volume(Volume(arr.astype(np.float32), affine), tmp_path / f"{name}.nii.gz")
    argv = ["evaluate", "--sources", str(paths["mri"]), str(paths["pet"]), "--fused", str(paths["fused"]),
            "--metrics", "MI,SSIM,EN,Qabf"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"MI", "SSIM", "EN", "Qabf"} and all(np.isfinite(list(out.values())))

    moved = affine.copy()
    moved[0, 3] = 5.0  # same shape, 5 mm elsewhere: not on the fused grid
    shifted = save_volume(Volume(mri.astype(np.float32), moved), tmp_path / "moved.nii.gz")
    argv[2] = str(shifted)
    assert main(argv) == 2
    assert "register/resample" in capsys.readouterr().err


def test_evaluate_unknown_metric_is_a_usage_error(slice_case, capsys):
    pa, pb, pf, _ = slice_case
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--sources", str(pa), str(pb), "--fused", str(pf), "--metrics", "QNCI"])
    assert exc.value.code == 2
    assert "did you mean 'QNCIE'" in capsys.readouterr().err


# --- evaluate-dir on real Harvard pairs ----------------------------------------------------------

PAIRS = [("ct_mri", "xg-16003", "ct.png"), ("pet_mri", "xg-25015", "pet.png"), ("pet_mri", "xg-30054", "pet.png")]


def _fake_fuse_dir(harvard_dir, out, how):
    """A tiny fuse-dir output (mean or max fusion of the luminance; colour kept as RGB for PET)."""
    from PIL import Image

    for task, pair, other in PAIRS:
        a = np.asarray(Image.open(harvard_dir / task / pair / "mri.png").convert("L"), dtype=np.float64)
        img = Image.open(harvard_dir / task / pair / other)
        b = np.asarray(img.convert("L") if img.mode != "RGB" else img.convert("YCbCr").getchannel(0), np.float64)
        f = (a + b) / 2 if how == "mean" else np.maximum(a, b)
        target = out / task / pair / "fused.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if img.mode == "RGB":  # put the PET chroma back, as fuse-dir does
            ycbcr = np.asarray(img.convert("YCbCr")).copy()
            ycbcr[..., 0] = np.round(f).astype(np.uint8)
            Image.fromarray(ycbcr, "YCbCr").convert("RGB").save(target)
        else:
            Image.fromarray(np.round(f).astype(np.uint8)).save(target)


@pytest.mark.harvard
def test_evaluate_dir_one_method(harvard_dir, tmp_path, capsys):
    fused = tmp_path / "mean"
    _fake_fuse_dir(harvard_dir, fused, "mean")
    rc = main(["evaluate-dir", str(fused), "--data", str(harvard_dir), "--metrics", "EN,MI,SSIM,Qabf"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "ct_mri (n=1)" in out and "pet_mri (n=2)" in out and "±" in out
    with (fused / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and {r["method"] for r in rows} == {"mean"}
    assert all(float(r["EN"]) > 0 and r["error"] == "" for r in rows)
    with (fused / "metrics_summary.csv").open() as fh:
        summary = list(csv.DictReader(fh))
    pet_en = [float(r["EN"]) for r in rows if r["task"] == "pet_mri"]
    row = next(r for r in summary if r["task"] == "pet_mri" and r["metric"] == "EN")
    assert float(row["mean"]) == pytest.approx(np.mean(pet_en)) and row["n"] == "2"
    assert float(row["std"]) == pytest.approx(np.std(pet_en, ddof=1))
    # a second run refuses to overwrite without --force
    assert main(["evaluate-dir", str(fused), "--data", str(harvard_dir), "--metrics", "EN"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["evaluate-dir", str(fused), "--data", str(harvard_dir), "--metrics", "EN", "--force"]) == 0


@pytest.mark.harvard
def test_evaluate_dir_compares_methods_and_draws_a_figure(harvard_dir, tmp_path, capsys, monkeypatch):
    from PIL import Image

    for how in ("mean", "max"):
        _fake_fuse_dir(harvard_dir, tmp_path / how, how)
    (tmp_path / "max" / "pet_mri" / "xg-30054" / "fused.png").unlink()  # max lacks one pair
    monkeypatch.chdir(tmp_path)
    rc = main(["evaluate-dir", str(tmp_path / "mean"), str(tmp_path / "max"), "--data", str(harvard_dir),
               "--metrics", "EN,SD,Qabf,MSE", "--jobs", "2"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "mean" in out and "max" in out and "*" in out
    with (tmp_path / "metrics_comparison.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4  # the 2 common pairs x 2 methods
    by = {(r["method"], r["pair"]): r for r in rows}
    # max fusion keeps more contrast than mean fusion on every pair
    assert all(float(by[("max", p)]["SD"]) > float(by[("mean", p)]["SD"]) for p in ("xg-16003", "xg-25015"))
    fig = Image.open(tmp_path / "metrics_comparison.png")
    assert fig.size[0] > 400 and fig.size[1] > 150
