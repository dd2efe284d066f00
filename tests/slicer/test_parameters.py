"""MedFuseParameters validation, and its option tables against medfuse's own."""

from __future__ import annotations

import pytest
from MedFuseLib import parameters
from MedFuseLib.parameters import MedFuseParameters


def _valid(**kw) -> MedFuseParameters:
    return MedFuseParameters(**{"reference_modality": "MR", "moving_modality": "PT", **kw})


def test_valid_parameters():
    assert _valid().isValid() == (True, "")
    assert _valid(window="40,80", moving_modality="CT").isValid() == (True, "")


@pytest.mark.parametrize("kw, words", [
    ({"moving_modality": None}, "choose the modality of the moving volume"),
    ({"reference_modality": "unknown"}, "choose the modality of the reference volume"),
    ({"moving_modality": "XR"}, "moving modality must be one of"),
    ({"method": "maxx"}, "unknown method 'maxx'"),
    ({"registration_type": "demons"}, "registration must be rigid, affine or bspline"),
    ({"window": "wide"}, "CT window must be one of"),
    ({"window": "40,-80"}, "CT window must be one of"),
    ({"colormap": "jet"}, "unknown colour map 'jet'"),
    ({"device": "tpu"}, "device must be cpu or cuda"),
])
def test_invalid_parameters_say_why(kw, words):
    ok, message = _valid(**kw).isValid()
    assert not ok and words in message


def test_no_fixed_modality_default():
    p = MedFuseParameters()
    assert p.reference_modality is None and p.moving_modality is None
    assert not p.isValid()[0]


def test_colour_only_for_pet_and_spect():
    assert _valid(moving_modality="PT").is_colour and _valid(moving_modality="NM").is_colour
    assert not _valid(moving_modality="CT").is_colour and not _valid(colormap="gray").is_colour


def test_tables_match_medfuse():
    from medfuse.color import COLORMAPS
    from medfuse.fusion import available_methods
    from medfuse.intensity.normalize import CTWindow
    from medfuse.modality import MODALITIES, MODALITY_LABELS

    assert parameters.MODALITIES == tuple(MODALITIES)
    # the copy used inside Slicer before medfuse is installed
    assert parameters._LOCAL_MODALITIES == tuple(MODALITIES)
    assert parameters._LOCAL_MODALITY_LABELS == dict(MODALITY_LABELS)
    assert set(parameters.METHODS) - {"default"} == set(available_methods())
    assert set(parameters.WINDOW_PRESETS) - {"default"} == {w.value for w in CTWindow}
    assert set(parameters.COLORMAPS) - {"default", "gray"} == set(COLORMAPS)
