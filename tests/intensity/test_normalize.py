"""normalize(): rules per modality, per-volume statistics, outlier robustness, geometry, errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from medfuse.errors import EmptyImageError, NonFiniteError, OptionError, SUVUnavailableError
from medfuse.intensity import CT_WINDOWS, CTWindow, head_mask, normalize, window_ct
from medfuse.volume import Volume

AFFINE = np.array([[0, 0, 2.0, -40.0], [-1.5, 0, 0, 50.0], [0, 1.5, 0, -30.0], [0, 0, 0, 1.0]])


def _head(shape=(40, 44, 30), seed=0, inside=(300.0, 900.0), outside=0.0) -> np.ndarray:
    """An ellipsoid 'head' with textured inside and flat background."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt(sum(g**2 for g in grid))
    a = np.full(shape, outside, np.float32)
    inner = r < 0.8
    a[inner] = rng.uniform(*inside, size=int(inner.sum())).astype(np.float32)
    return a


def _ct(shape=(40, 44, 30)) -> np.ndarray:
    a = _head(shape, inside=(0.0, 80.0), outside=-1000.0)
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt(sum(g**2 for g in grid))
    a[(r > 0.7) & (r < 0.8)] = 1500.0  # skull
    return a


@pytest.mark.parametrize("modality", ["MR", "CT", "PT", "NM"])
def test_output_is_float32_in_unit_range_on_the_same_grid(modality):
    arr = _ct() if modality == "CT" else _head()
    vol = Volume(arr, AFFINE, modality, {"units": "HU"} if modality == "CT" else {})
    out = normalize(vol)
    assert out.array.dtype == np.float32 and out.shape == vol.shape
    assert float(out.array.min()) >= 0.0 and float(out.array.max()) <= 1.0
    np.testing.assert_array_equal(out.affine, AFFINE)
    assert out.modality == modality and "method" in out.meta["normalization"]


def test_unknown_modality_is_refused_not_normalized_as_mri():
    from medfuse.errors import UnknownModalityError

    with pytest.raises(UnknownModalityError, match="modality"):
        normalize(Volume(_head(), AFFINE, None))


def test_ct_window_presets_and_custom_window():
    hu = np.array([-1000.0, 0.0, 40.0, 80.0, 1000.0], np.float32)
    np.testing.assert_allclose(window_ct(hu, "brain"), [0.0, 0.0, 0.5, 1.0, 1.0])
    level, width = CT_WINDOWS[CTWindow.BONE]
    np.testing.assert_allclose(window_ct(np.float32([level]), CTWindow.BONE), [0.5])
    np.testing.assert_allclose(window_ct(hu, (0.0, 2000.0)), [0.0, 0.5, 0.52, 0.54, 1.0])
    assert set(CT_WINDOWS) == {CTWindow.BRAIN, CTWindow.SUBDURAL, CTWindow.BONE, CTWindow.SOFT_TISSUE}
    ct = Volume(_ct(), AFFINE, "CT")
    out = normalize(ct, window="subdural")
    assert out.meta["normalization"]["window"] == "subdural"
    assert out.meta["normalization"]["level"] == 75.0 and out.meta["normalization"]["width"] == 215.0
    with pytest.raises(OptionError, match="did you mean 'brain'"):
        normalize(ct, window="bran")
    with pytest.raises(ValueError, match="width must be > 0"):
        window_ct(hu, (40.0, 0.0))


def test_mri_outlier_does_not_crush_contrast():
    vol = Volume(_head(), AFFINE, "MR")
    before = normalize(vol).array
    spiked = vol.array.copy()
    idx = tuple(int(n // 2) for n in spiked.shape)
    spiked[idx] = 1e6
    after = normalize(vol.with_array(spiked)).array
    others = np.ones(spiked.shape, bool)
    others[idx] = False
    assert float(np.abs(after[others] - before[others]).max()) < 1e-3
    assert after[idx] == 1.0


def test_statistics_are_per_volume_not_per_slice():
    arr = _head()
    arr[:, :, 20] *= 3.0  # one bright slice
    out = normalize(Volume(arr, AFFINE, "MR")).array
    inside = _head() > 0
    assert out[:, :, 20][inside[:, :, 20]].mean() > 1.5 * out[:, :, 10][inside[:, :, 10]].mean()


def test_mask_restricts_statistics():
    arr = _head()
    mask = np.zeros(arr.shape, bool)
    mask[15:25, 15:25, 10:20] = True
    out = normalize(Volume(arr, AFFINE, "MR"), mask=mask)
    lo, hi = np.percentile(arr[mask], [0.5, 99.5])
    assert out.meta["normalization"]["lo"] == pytest.approx(lo) and out.meta["normalization"]["hi"] == pytest.approx(hi)
    with pytest.raises(ValueError, match="mask shape"):
        normalize(Volume(arr, AFFINE, "MR"), mask=mask[:-1])


def _pet_meta(**changes):
    meta = dict(units="BQML", decay_correction="START", corrected_image=["ATTN", "DECY"],
                series_datetime="2024-03-05T11:00:00", acquisition_datetime="2024-03-05T11:00:00",
                radiopharmaceutical_start_datetime="2024-03-05T10:00:00", radiopharmaceutical_start_time=None,
                total_dose_bq=370e6, half_life_s=6586.2, patient_weight_kg=70.0)
    meta.update(changes)
    return meta


def test_pet_uses_suv_when_the_header_allows_it():
    pet = Volume(_head(inside=(2000.0, 40000.0)), AFFINE, "PT", {"pet": _pet_meta()})
    out = normalize(pet)
    rec = out.meta["normalization"]
    assert rec["method"] == "suv" and rec["suv_factor"] == pytest.approx(1.38168 / 5000, rel=1e-5)
    assert rec["suv_window"][0] == 0.0
    fixed = normalize(pet, window=(0.0, 5.0))  # a fixed SUV window: 5000 Bq/mL -> SUV 1.38 -> 0.276
    voxel = np.argwhere(pet.array > 0)[0]
    expected = min(pet.array[tuple(voxel)] * rec["suv_factor"] / 5.0, 1.0)
    assert fixed.array[tuple(voxel)] == pytest.approx(expected, rel=1e-5)


def test_pet_without_suv_falls_back_with_a_warning_that_says_why(caplog):
    pet = Volume(_head(), AFFINE, "PT", {"pet": _pet_meta(patient_weight_kg=None)})
    with caplog.at_level(logging.WARNING, logger="medfuse"):
        out = normalize(pet)
    assert out.meta["normalization"]["method"] == "percentile"
    assert "not SUV" in caplog.text and "patient weight" in caplog.text
    with pytest.raises(SUVUnavailableError):
        normalize(pet, window=(0.0, 5.0))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="medfuse"):
        normalize(Volume(_head(), AFFINE, "PT"))
    assert "no DICOM PET metadata" in caplog.text


def test_spect_is_never_suv():
    spect = Volume(_head(), AFFINE, "NM", {"pet": _pet_meta()})
    assert normalize(spect).meta["normalization"]["method"] == "percentile"
    with pytest.raises(ValueError, match="percentiles"):
        normalize(spect, window=(0.0, 5.0))


def test_display_slices_are_divided_by_their_bit_depth():
    png = Volume(np.arange(256, dtype=np.float32).reshape(16, 16), modality="CT", meta={"value_max": 255.0})
    out = normalize(png)
    np.testing.assert_allclose(out.array, png.array / 255.0)
    assert out.meta["normalization"]["method"] == "display"


def test_ct_not_in_hu_falls_back_to_percentiles(caplog):
    vol = Volume(_head(), AFFINE, "CT")
    with caplog.at_level(logging.WARNING, logger="medfuse"):
        out = normalize(vol)
    assert out.meta["normalization"]["method"] == "percentile" and "Hounsfield" in caplog.text


def test_blank_and_non_finite_images_raise():
    with pytest.raises(EmptyImageError, match="blank"):
        normalize(Volume(np.zeros((8, 8, 8), np.float32), AFFINE, "MR"))
    arr = _head()
    arr[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"1 of \d+ voxels"):
        normalize(Volume(arr, AFFINE, "MR"))
    with pytest.raises(OptionError, match="modality"):
        normalize(Volume(_head(), AFFINE), modality="XR")


def test_head_mask_of_ct_and_mri():
    inside = np.sqrt(sum(g**2 for g in np.meshgrid(*[np.linspace(-1, 1, n) for n in (40, 44, 30)],
                                                     indexing="ij"))) < 0.8
    for vol in (Volume(_ct(), AFFINE, "CT"), Volume(_head(), AFFINE, "MR")):
        m = head_mask(vol)
        assert m.shape == vol.shape and m.dtype == bool
        assert 2 * np.count_nonzero(m & inside) / (m.sum() + inside.sum()) > 0.97


def test_normalize_modality_transform_keeps_affine_for_3d_and_2d():
    import torch

    from medfuse.transforms import NormalizeModality, to_metatensor

    mt = to_metatensor(Volume(_ct(), AFFINE, "CT", {"units": "HU"}))
    out = NormalizeModality(window="brain")(mt)
    np.testing.assert_allclose(out.affine.numpy(), AFFINE)
    assert out.meta["normalization"]["window"] == "brain"
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    slice2d = to_metatensor(Volume(_head((40, 44, 3))[:, :, 1], AFFINE, "MR"))
    out2 = NormalizeModality()(slice2d)
    assert out2.shape == slice2d.shape and torch.allclose(out2.affine, slice2d.affine)
