"""Small phantom cases for the registration tests (3 mm MRI: a registration takes a few seconds)."""

from __future__ import annotations

import pytest

from medfuse.registration import RegistrationSettings

#: coarse but complete pipeline: the 3 mm phantoms are registered at their own resolution
FAST = RegistrationSettings(working_spacing_mm=3.0)


def small_case(modality: str, seed: int = 0, **kwargs):
    from medfuse.phantom import make_case

    spacing = {"ct": (3.0, 3.0, 4.0), "pet": 4.0, "spect": 5.0, "t2": (3.0, 3.0, 4.0)}[modality]
    return make_case(modality, seed=seed, mri_spacing=3.0, moving_spacing=spacing, **kwargs)


@pytest.fixture(scope="session")
def fast() -> RegistrationSettings:
    """Settings for the 3 mm test phantoms."""
    return FAST


@pytest.fixture(scope="session")
def ct_case():
    return small_case("ct", seed=0)


@pytest.fixture(scope="session")
def pet_case():
    return small_case("pet", seed=1)


@pytest.fixture(scope="session")
def aligned_ct_case():
    return small_case("ct", seed=2, rotation_deg=0, translation_mm=0)
