"""Training on one's own registered volume pairs (`medfuse train --volumes`) and fine-tuning (`--init-from`)."""

from __future__ import annotations

import copy
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform

from medfuse.cli import main
from medfuse.errors import CorruptFileError, SpaceMismatchError, UnsupportedInputError
from medfuse.io import save_volume
from medfuse.training import read_checkpoint, train
from medfuse.training.volumes import find_volume_pairs, load_volume_slices, read_volume_list
from medfuse.volume import Volume

from harvard_fixture import TINY

#: stands for a patient's name in the input paths: it must appear in no message
CANARY = "Doe^John_1957"
SHAPE, SPACING = (40, 48, 36), (5.0, 5.0, 5.0)


def _case(modality: str, seed: int):
    from medfuse.phantom import make_case

    return make_case(modality, seed, rotation_deg=0, translation_mm=0, mri_shape=SHAPE, mri_spacing=SPACING,
                     moving_shape=SHAPE, moving_spacing=SPACING, moving_axes="RAS")


@pytest.fixture(scope="module")
def cases():
    """Three aligned PET-MRI phantom subjects and one CT-MRI, small grids (one grid per subject)."""
    out = {("pet", i): _case("pet", i) for i in range(3)}
    out[("ct", 0)] = _case("ct", 0)
    for case in out.values():
        assert case.mri.same_grid(case.moving)
    return out


@pytest.fixture(scope="module")
def pet_folder(cases, tmp_path_factory):
    """VOLUMES/<subject>/{mri,pet}.nii.gz for three subjects, under a folder named like a patient."""
    root = tmp_path_factory.mktemp("vol") / CANARY
    for i in range(3):
        sub = root / f"sub-{i:02d}"
        sub.mkdir(parents=True)
        save_volume(cases["pet", i].mri, sub / "mri.nii.gz")
        save_volume(cases["pet", i].moving, sub / "pet.nii.gz")
    return root


def _reoriented(volume: Volume, codes: tuple[str, str, str]) -> Volume:
    """The same image stored in another axis order (exact permutation/flips; the affine follows)."""
    img = nib.Nifti1Image(volume.array, volume.affine)
    new = img.as_reoriented(ornt_transform(io_orientation(volume.affine), axcodes2ornt(codes)))
    return Volume(np.asarray(new.dataobj, dtype=np.float32), new.affine, modality=volume.modality)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("medfuse "), err
    assert CANARY not in err and "Traceback" not in err
    return lines[0]


def test_folder_and_list_files(pet_folder, tmp_path):
    pairs = find_volume_pairs(pet_folder, "pet_mri")
    assert [p.subject for p in pairs] == ["sub-00", "sub-01", "sub-02"]
    assert all(p.reference.name == "mri.nii.gz" and p.moving.name == "pet.nii.gz" for p in pairs)
    expected = [(p.subject, p.reference.resolve(), p.moving.resolve()) for p in pairs]

    csv_list = pet_folder / "pairs.csv"  # relative paths: from the list's folder
    csv_list.write_text("subject,reference,moving\n" + "".join(
        f"{p.subject},{p.subject}/mri.nii.gz,{p.subject}/pet.nii.gz\n" for p in pairs))
    json_objects = tmp_path / "pairs.json"
    json_objects.write_text(json.dumps([{"subject": s, "reference": str(r), "moving": str(m)} for s, r, m in expected]))
    json_triples = tmp_path / "triples.json"
    json_triples.write_text(json.dumps([[s, str(r), str(m)] for s, r, m in expected]))
    for listed in (csv_list, json_objects, json_triples):
        got = read_volume_list(listed)
        assert [(p.subject, p.reference.resolve(), p.moving.resolve()) for p in got] == expected
        assert [(p.subject, p.moving) for p in find_volume_pairs(listed, "pet_mri")] == [(p.subject, p.moving)
                                                                                         for p in got]
    csv_list.unlink()

    bad = tmp_path / "bad.csv"
    bad.write_text("id,mri,pet\nsub-00,a,b\n")
    with pytest.raises(CorruptFileError, match="subject, reference, moving"):
        read_volume_list(bad)
    bad.write_text(f"subject,reference,moving\nsub-00,{expected[0][1]},{expected[0][2]}\n"
                   f"sub-00,{expected[1][1]},{expected[1][2]}\n")
    with pytest.raises(CorruptFileError, match="subject 2 of 2 repeats"):
        read_volume_list(bad)
    bad.write_text(f"subject,reference,moving\nsub-00,{expected[0][1]},{CANARY}.nii.gz\n")
    with pytest.raises(FileNotFoundError, match="subject 1 of 1: the moving scan") as err:
        read_volume_list(bad)
    assert CANARY not in str(err.value)
    with pytest.raises(UnsupportedInputError, match="no subject folders"):
        find_volume_pairs(tmp_path, "ct_mri")  # files but no subject folders
    with pytest.raises(UnsupportedInputError, match=".csv or .json"):
        find_volume_pairs(pet_folder / "sub-00" / "mri.nii.gz", "pet_mri")
    with pytest.raises(FileNotFoundError, match=r"subject 1 of 3: no CT scan \(ct\)"):
        find_volume_pairs(pet_folder, "ct_mri")  # the second scan is named by the pair


def test_slices_are_axial_whatever_the_storage_order(cases, tmp_path):
    case = cases["pet", 0]
    stored = {"ras": (case.mri, case.moving)}
    stored["pil"] = tuple(_reoriented(v, ("P", "I", "L")) for v in stored["ras"])  # axial axis stored first
    assert stored["pil"][0].shape != stored["ras"][0].shape
    for name, (mri, pet) in stored.items():
        (tmp_path / name / "s").mkdir(parents=True)
        save_volume(mri, tmp_path / name / "s" / "mri.nii.gz")
        save_volume(pet, tmp_path / name / "s" / "pet.nii.gz")
    ras, pil = (load_volume_slices(tmp_path / name, "pet_mri") for name in ("ras", "pil"))
    assert [s.key for s in ras] == [s.key for s in pil] and len(ras) > 10
    for x, y in zip(ras, pil):
        assert x.a.shape == (SHAPE[1], SHAPE[0])  # rows anterior -> posterior (j), columns right -> left (i)
        np.testing.assert_allclose(x.a, y.a, atol=1e-6)
        np.testing.assert_allclose(x.b, y.b, atol=1e-6)
    # the AANLIB orientation: row 0 is anterior, column 0 patient right (RAS storage: flipped j and i)
    # (the per-volume intensity map is monotone, so the slice correlates with the stored one, transposed)
    k = int(ras[len(ras) // 2].key.rsplit("k", 1)[1])
    mid = ras[len(ras) // 2].a
    def corr(stored):
        return np.corrcoef(mid.ravel(), stored.T.ravel())[0, 1]

    right = corr(case.mri.array[::-1, ::-1, k])
    assert right > 0.95 and right > corr(case.mri.array[:, ::-1, k]) and right > corr(case.mri.array[::-1, :, k])


def test_slices_outside_the_head_are_dropped(cases, tmp_path):
    case = cases["pet", 1]
    pad = ((0, 0), (0, 0), (0, 10))  # ten slices of air above the head (k runs inferior -> superior)
    for name, vols in (("plain", (case.mri, case.moving)),
                       ("tall", tuple(Volume(np.pad(v.array, pad), v.affine, modality=v.modality)
                                      for v in (case.mri, case.moving)))):
        (tmp_path / name / "s").mkdir(parents=True)
        save_volume(vols[0], tmp_path / name / "s" / "mri.nii.gz")
        save_volume(vols[1], tmp_path / name / "s" / "pet.nii.gz")
    plain, tall = (load_volume_slices(tmp_path / name, "pet_mri") for name in ("plain", "tall"))
    assert [s.key for s in tall] == [s.key for s in plain]  # none of the air slices
    for x, y in zip(plain, tall):  # the same slices (normalization statistics move a little with the border)
        assert np.corrcoef(x.a.ravel(), y.a.ravel())[0, 1] > 0.999
        assert np.corrcoef(x.b.ravel(), y.b.ravel())[0, 1] > 0.99
    ks = sorted(int(s.key.rsplit("k", 1)[1]) for s in plain)
    assert 0 < len(ks) < SHAPE[2] and ks[0] > 0  # the head's first slices (neck, vertex) are thin: dropped
    everything = load_volume_slices(tmp_path / "tall", "pet_mri", min_head_fraction=0.0)
    assert len(everything) > len(tall)  # thin head slices kept now ...
    assert all(int(s.key.rsplit("k", 1)[1]) < SHAPE[2] for s in everything)  # ... air slices never


@pytest.mark.parametrize("modality", ["pet", "ct"])
def test_normalization_is_the_one_inference_feeds_the_network(cases, modality, monkeypatch):
    """The slices equal, number for number, what the shipped network receives in fuse_volumes."""
    import medfuse.inference as inference
    from medfuse.pipeline import FusionOptions, fuse_volumes
    from medfuse.training.volumes import network_input_stacks

    case = cases[modality, 0]
    pair = f"{modality}_mri"
    seen = []
    real_load = inference.load_model

    def recording_load(path, device="cpu"):
        model, info = real_load(path, device)
        model = copy.deepcopy(model)  # the cached model stays untouched
        # the entry point inference calls on the slices: a pyramid head's logits, a blend head's components
        entry = "head_logits" if getattr(model, "output", None) == "pyramid" else "blend_components"
        inner = getattr(model, entry)

        def record(x):
            seen.append(x.detach().cpu().numpy().copy())
            return inner(x)

        setattr(model, entry, record)
        return model, info

    monkeypatch.setattr(inference, "load_model", recording_load)
    fuse_volumes(case.mri, case.moving, FusionOptions(method="light"))
    fed = np.concatenate(seen)  # (S, 2, H', W') padded to the network's divisor at the far ends
    a, b, _ = network_input_stacks(case.mri, case.moving, pair)
    assert fed.shape[0] == a.shape[0]
    np.testing.assert_allclose(fed[:, 0, : a.shape[1], : a.shape[2]], a, atol=1e-6)
    np.testing.assert_allclose(fed[:, 1, : a.shape[1], : a.shape[2]], b, atol=1e-6)


def _cli_train(tmp_path, capsys, volumes, out, *extra):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    code = main(["train", "--pair", "pet_mri", "--method", "light", "--volumes", str(volumes), "--config", str(cfg),
                 "--no-progress", "--out", str(out), *extra])
    return code, capsys.readouterr()


@pytest.mark.parametrize("fraction, n_val", [("0", 0), ("0.34", 1)])
def test_subject_split_with_val_fraction(pet_folder, tmp_path, capsys, fraction, n_val):
    out = tmp_path / "split.pt"
    code, io = _cli_train(tmp_path, capsys, pet_folder, out, "--iterations", "1", "--val-fraction", fraction)
    assert code == 0, io.err
    split = torch.load(out, weights_only=True)["split"]
    assert split["source"] == "volumes" and split["subjects"] == 3 and split["val_fraction"] == float(fraction)
    assert len(split["val_cases"]) == n_val and len(split["train_cases"]) == 3 - n_val
    assert sorted(split["train_cases"] + split["val_cases"]) == ["sub-00", "sub-01", "sub-02"]
    for side in ("train", "val"):  # every slice of a subject on its subject's side
        assert {k.split("/")[2] for k in split[f"{side}_pairs"]} == set(split[f"{side}_cases"])
    assert f"{n_val} validation case(s)" in io.out and CANARY not in io.out + io.err


def test_fine_tune_the_shipped_network_then_fuse_with_it(pet_folder, tmp_path, capsys):
    from medfuse.weights import weights_path

    out = tmp_path / "pet_mri_light_mine.pt"
    code, io = _cli_train(tmp_path, capsys, pet_folder, out, "--init-from", "shipped", "--iterations", "3",
                          "--val-fraction", "0.34")
    assert code == 0, io.err
    ckpt = torch.load(out, weights_only=True)
    shipped = read_checkpoint(weights_path("pet_mri", "light"))
    assert ckpt["network"] == shipped["network"] and ckpt["iteration"] == 3
    assert ckpt["config"]["lr"] == ckpt["config"]["fine_tune_lr"] == 1e-4
    record = ckpt["provenance"]["init_from"]
    assert record["kind"] == "shipped" and record["name"] == "pet_mri_light.pt" and len(record["sha256"]) == 64
    deltas = [float((ckpt["model"][k].float() - v.float()).abs().max()) for k, v in shipped["model"].items()]
    assert 0 < max(deltas) < 0.01  # moved a little from the shipped weights, not re-initialized

    fused = tmp_path / "fused.nii.gz"
    sub = pet_folder / "sub-00"
    assert main(["fuse", "--reference", str(sub / "mri.nii.gz"), "--moving", str(sub / "pet.nii.gz"), "--out",
                 str(fused), "--method", "light", "--weights", str(out), "--no-qc", "--no-quantitative"]) == 0
    assert fused.is_file()
    assert json.loads(fused.with_name("fused.json").read_text())["weights"]["file"] == out.name

    # a checkpoint path works too (fine-tune one's own fine-tuned network further), for the same network only
    again = train("pet_mri", "light", tmp_path / "again.pt", config=TINY, volumes=pet_folder, init_from=out,
                  val_fraction=0, iterations=1, progress=False)
    record = read_checkpoint(again["out"])["provenance"]["init_from"]
    assert record["kind"] == "checkpoint" and record["name"] == out.name and again["split"]["val_cases"] == []
    with pytest.raises(UnsupportedInputError, match="holds a 'light' network, not 'msra'"):
        train("pet_mri", "msra", tmp_path / "m.pt", volumes=pet_folder, init_from=out, progress=False)


def test_bad_inputs_give_one_line(cases, pet_folder, tmp_path, capsys):
    case = cases["pet", 2]
    root = tmp_path / CANARY
    (root / "a").mkdir(parents=True)
    save_volume(case.mri, root / "a" / "mri.nii.gz")
    shifted = np.array(case.moving.affine)
    shifted[:3, 3] += 2.0  # same shape, another grid: not registered
    save_volume(Volume(case.moving.array, shifted, modality="PT"), root / "a" / "pet.nii.gz")
    code, io = _cli_train(tmp_path, capsys, root, tmp_path / "x.pt", "--iterations", "1")
    line = _one_line(io.err)
    assert code == 2 and "subject 1 of 1" in line and "medfuse register" in line and "not on the reference" in line
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(SpaceMismatchError):
        load_volume_slices(root, "pet_mri")

    (root / "a" / "pet.nii.gz").unlink()  # missing file
    code, io = _cli_train(tmp_path, capsys, root, tmp_path / "x.pt", "--iterations", "1")
    assert code == 2 and "subject 1 of 1: no PT scan (pet)" in _one_line(io.err)
    code, io = _cli_train(tmp_path, capsys, root / "nothing.csv", tmp_path / "x.pt", "--iterations", "1")
    assert code == 2 and "does not exist" in _one_line(io.err)
    code, io = _cli_train(tmp_path, capsys, pet_folder, tmp_path / "x.pt", "--iterations", "1", "--val-fraction", "1")
    assert code == 2 and "--val-fraction" in _one_line(io.err)
    code, io = _cli_train(tmp_path, capsys, pet_folder, tmp_path / "x.pt", "--init-from",
                          str(tmp_path / "missing.pt"))
    assert code == 2 and "--init-from" in _one_line(io.err)
    only = tmp_path / "only"  # one subject cannot be split: validation needs --val-fraction 0
    (only / "s").mkdir(parents=True)
    for name in ("mri.nii.gz", "pet.nii.gz"):
        (only / "s" / name).symlink_to(pet_folder / "sub-00" / name)
    code, io = _cli_train(tmp_path, capsys, only, tmp_path / "x.pt", "--iterations", "1")
    assert code == 2 and "--val-fraction 0" in _one_line(io.err)
    with pytest.raises(SystemExit):  # --data and --volumes exclude each other
        main(["train", "--pair", "pet_mri", "--method", "light", "--data", "d", "--volumes", "v", "--out", "o.pt"])
