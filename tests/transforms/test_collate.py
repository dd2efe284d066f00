"""Every metadata entry a medfuse door puts on a MetaTensor goes through MONAI's collate (issue 23, item 1).

The bundles batch their data dictionaries with MONAI's ``DataLoader`` (``list_data_collate``). A PET
DICOM series read with a real scanner's complete header carries vendor-specific SUV fields that
this vendor does not write (GE's private scan time on a Siemens series, Philips' scale factors on a
GE series): they are ``None`` in ``meta["pet"]`` and used to reach ``default_collate``, which raises
``TypeError: ... found <class 'NoneType'>``. Inputs here are made independently of the reader: pydicom
writes the series from the real header sets of ``shared/data/real/pet_suv_headers``.
"""

from __future__ import annotations

import numpy as np
import pytest
from monai.data import DataLoader, decollate_batch, list_data_collate
from monai.transforms import Compose, ConcatItemsd

from medfuse.transforms import (
    ApplyColormapd,
    LoadVolumed,
    NormalizeModalityd,
    RegisterToReferenced,
    SplitLuminanced,
    collate_safe,
    to_metatensor,
)
from tests.io.dicom_fixtures import pet_tags_from_real_header, write_series

AFFINE = np.array([[-2.0, 0, 0, 20.0], [0, 2.0, 0, -24.0], [0, 0, 2.0, -10.0], [0, 0, 0, 1.0]])
VENDORS = ["SIEMENS", "GE_MEDICAL_AND_BQML", "PHILIPS_BQML", "PHILIPS_CNTS_AND_BQML_SUV", "PHILIPS_CNTS_AND_SUV",
           "BQML_AC_DT_lessThan_S_DT_SIEMENS", "CPS_AND_BQML_AC_DT_-_S_DT", "RADIOPHARM_DATETIME_UNDEFINED"]


def _blob(shape=(20, 24, 10), seed=0, base=100):
    rng = np.random.default_rng(seed)
    a = np.zeros(shape, np.int32)
    a[4:-4, 4:-4, 2:-2] = base + rng.integers(0, base, (shape[0] - 8, shape[1] - 8, shape[2] - 4))
    return a


def _mri(path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(_blob(seed=1).astype(np.float32), AFFINE), path)
    return path


def _preprocessing(register=False):
    """The bundle's preprocessing (bundles/mri_pet_fusion/configs/inference.json), resample only by default."""
    return Compose([
        LoadVolumed(keys=["reference", "moving"], modality=["MR", "PT"], keep_color=True),
        SplitLuminanced(keys=["moving"]),
        RegisterToReferenced(keys=["moving"], ref_key="reference", register=register),
        NormalizeModalityd(keys=["reference", "moving"]),
        ApplyColormapd(keys=["moving"]),
        ConcatItemsd(keys=["reference", "moving"], name="image", dim=0),
    ])


@pytest.mark.parametrize("vendor", VENDORS)
def test_pet_dicom_with_a_real_vendor_header_collates(vendor, tmp_path, real_dir):
    header = real_dir / "pet_suv_headers" / f"{vendor}-instances.json"
    write_series(tmp_path / "pet", _blob(base=1000), AFFINE, modality="PT", pet_tags=pet_tags_from_real_header(header))
    data = _preprocessing()({"reference": str(_mri(tmp_path / "t1.nii.gz")), "moving": str(tmp_path / "pet")})
    pet = data["moving"].meta["pet"]
    assert pet["units"] in ("BQML", "CNTS") and pet["decay_correction"] == "START"
    batch = list_data_collate([data])  # raised TypeError (None in meta["pet"]) before the fix
    assert batch["image"].shape == (1, 2, 20, 24, 10)
    back = decollate_batch(batch)[0]
    assert back["moving"].meta["pet"]["units"] == pet["units"]
    assert float(back["moving"].meta["pet"]["patient_weight_kg"]) == pytest.approx(pet["patient_weight_kg"])


def test_a_dataloader_batches_two_vendors(tmp_path, real_dir):
    """Two cases from different vendors (different SUV extras) in one batch of a MONAI DataLoader."""
    cases = []
    for i, vendor in enumerate(("GE_MEDICAL_AND_BQML", "PHILIPS_BQML")):
        header = real_dir / "pet_suv_headers" / f"{vendor}-instances.json"
        write_series(tmp_path / f"pet{i}", _blob(base=1000, seed=i), AFFINE, modality="PT",
                     pet_tags=pet_tags_from_real_header(header))
        cases.append({"reference": str(_mri(tmp_path / f"t1_{i}.nii.gz")), "moving": str(tmp_path / f"pet{i}")})
    pre = _preprocessing()
    loader = DataLoader([pre(c) for c in cases], batch_size=1)
    assert [b["image"].shape[0] for b in loader] == [1, 1]


def test_skipped_registration_and_pipeline_meta_collate(tmp_path):
    """The registration summary of a skipped registration (one DICOM frame of reference) and every entry the
    pipeline's volumes carry (pair check with None frames of reference, normalization records)."""
    from medfuse.pipeline import FusionOptions, fuse_volumes, load_inputs

    write_series(tmp_path / "ct", _blob(base=1000), AFFINE, modality="CT", frame_of_reference_uid="1.2.3.4",
                 intercepts=-1024)
    write_series(tmp_path / "pet", _blob(base=1000, seed=2), AFFINE, modality="PT", frame_of_reference_uid="1.2.3.4",
                 pet_tags={})
    data = _preprocessing(register=True)({"reference": str(tmp_path / "ct"), "moving": str(tmp_path / "pet")})
    assert data["moving"].meta["registration"]["skipped"] is True
    list_data_collate([data])

    ref, mov = load_inputs(str(_mri(tmp_path / "t1.nii.gz")), str(tmp_path / "pet"))
    result = fuse_volumes(ref, mov, FusionOptions(method="mean", register=False))
    assert any(v is None for v in result.pair_check["frame_of_reference"].values())
    for vol in (result.reference, result.moving):  # every entry but the raw DICOM identity (never put on a
        # MetaTensor, never printed), and the pair check's record with its None frames of reference
        extra = {k: v for k, v in vol.meta.items() if k != "dicom_uids"}
        assert "normalization" in extra
        list_data_collate([{"img": to_metatensor(vol, extra_meta={**extra, "pair_check": result.pair_check})}])


def test_collate_safe_values():
    meta = {"a": None, "b": {"c": None, "d": 1.0}, "e": (1, None), "f": np.float32(2.5), "g": np.array(["x", "y"]),
            "h": {"z", "y"}, "i": np.arange(3)}
    out = collate_safe(meta)
    assert "a" not in out and out["b"] == {"d": 1.0} and out["f"] == 2.5 and isinstance(out["f"], float)
    assert out["e"][0] == 1 and np.isnan(out["e"][1])
    assert out["g"] == ["x", "y"] and out["h"] == ["y", "z"]
    np.testing.assert_array_equal(out["i"], np.arange(3))
    list_data_collate([{"m": out}, {"m": out}])


@pytest.mark.parametrize("modality", ["CT", "NM"])
def test_ct_and_spect_dicom_without_a_frame_of_reference_collate(modality, tmp_path):
    """The other bundles' doors: a DICOM CT or SPECT series without FrameOfReferenceUID (meta['frame_of_reference']
    is None) through their preprocessing."""

    def no_frame(ds, k):
        del ds.FrameOfReferenceUID

    write_series(tmp_path / "scan", _blob(base=1000), AFFINE, modality=modality, edit=no_frame,
                 intercepts=-1024 if modality == "CT" else 0)
    pre = Compose([
        LoadVolumed(keys=["reference", "moving"], modality=["MR", modality]),
        RegisterToReferenced(keys=["moving"], ref_key="reference", register=False),
        NormalizeModalityd(keys=["reference", "moving"]),
        ApplyColormapd(keys=["moving"]),
        ConcatItemsd(keys=["reference", "moving"], name="image", dim=0),
    ])
    data = pre({"reference": str(_mri(tmp_path / "t1.nii.gz")), "moving": str(tmp_path / "scan")})
    assert data["moving"].meta.get("format") == "dicom"
    assert list_data_collate([data])["image"].shape == (1, 2, 20, 24, 10)
