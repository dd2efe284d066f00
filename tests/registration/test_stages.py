"""register()'s stages as parameters: a given start, and the B-spline check raised as itself.

(That no message of the package names a command-line flag is held, for every module outside the doors, by
tests/test_cli_inputs.py::test_no_message_outside_the_doors_names_a_command_line_flag.)"""

from __future__ import annotations


import numpy as np
import pytest

from medfuse.errors import RegistrationError
from medfuse.phantom import HEAD_CENTER_MM, rigid_matrix
from medfuse.registration import RegistrationSettings, register

def _head_displacement(a: np.ndarray, b: np.ndarray, points: np.ndarray) -> float:
    """Mean distance (mm) between where two reference->moving RAS matrices send ``points``."""
    d = points @ (a - b)[:3, :3].T + (a - b)[:3, 3]
    return float(np.linalg.norm(d, axis=1).mean())


def test_start_ras_is_where_the_optimizer_starts(ct_case, fast):
    """A start 20 degrees and 15 mm off the truth, three optimizer steps: the result stays near the given start
    (RAS in, RAS out: a sign slip between RAS and LPS would put it tens of mm away)."""
    start = ct_case.reference_to_moving @ rigid_matrix((20, 0, 0), (0, 0, 15), HEAD_CENTER_MM)
    few = RegistrationSettings(working_spacing_mm=3.0, rigid_iterations=1, check_orientation=False,
                               check_optimum=False)
    result = register(ct_case.mri, ct_case.moving, settings=few, checks=False, start_ras=start)
    points = ct_case.target_points(100)
    assert _head_displacement(start, ct_case.reference_to_moving, points) > 20.0
    assert _head_displacement(result.reference_to_moving_ras, start, points) < 6.0
    assert any("given start" in m for m in result.messages)
    # without it, the same settings start from the best initialization, not there
    free = register(ct_case.mri, ct_case.moving, settings=few, checks=False)
    assert _head_displacement(free.reference_to_moving_ras, start, points) > 15.0


@pytest.mark.parametrize("checks", [True, False])
def test_bspline_check_is_raised_as_itself_or_kept_when_overridden(ct_case, checks):
    """The B-spline displacement check raised inside the optimization's error handler, which reworded it as a
    SimpleITK failure; now it is a check like the others (a limit of 0 mm: any deformation fails it)."""
    strict = RegistrationSettings(working_spacing_mm=3.0, bspline_iterations=3, max_bspline_displacement_mm=0.0,
                                  check_optimum=False)
    if checks:
        with pytest.raises(RegistrationError, match="implausible B-spline deformation") as info:
            register(ct_case.mri, ct_case.moving, transform="bspline", settings=strict)
        assert "SimpleITK registration failed" not in str(info.value)
        assert info.value.option == "accept_registration" and "the accept_registration option" in str(info.value)
    else:
        result = register(ct_case.mri, ct_case.moving, transform="bspline", settings=strict, checks=False)
        assert [f for f in result.check_failures if "B-spline" in f] and result.summary()["checks"] == "overridden"
        np.testing.assert_array_equal(result.resampled.affine, ct_case.mri.affine)
