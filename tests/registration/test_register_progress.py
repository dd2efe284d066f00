"""register()'s ``progress`` callback: every stage reported once, in order, with a percentage that only grows, and
the pipeline's ``progress`` carrying them (what ``medfuse fuse --progress`` prints and the Slicer module reads)."""

from __future__ import annotations

import pytest

from medfuse.registration import register
from medfuse.registration.core import STAGE_PROGRESS

STAGES = {
    "rigid": ["working copies", "initialization", "rigid", "checking the result", "resampling"],
    "affine": ["working copies", "initialization", "rigid", "affine", "checking the result", "resampling"],
}


@pytest.mark.parametrize("kind", ["rigid", "affine"])
def test_register_reports_each_stage_in_order(ct_case, fast, kind):
    calls = []
    result = register(ct_case.mri, ct_case.moving, transform=kind, settings=fast, checks=False,
                      progress=lambda percent, stage: calls.append((percent, stage)))
    assert [stage for _, stage in calls] == STAGES[kind]
    percents = [percent for percent, _ in calls]
    assert percents == sorted(set(percents)) and percents[0] == 0 and percents[-1] < 100
    assert [STAGE_PROGRESS[kind][stage] for _, stage in calls] == percents
    assert result.transform_type == kind


def test_stage_table_covers_every_stage_register_reports():
    for kind, table in STAGE_PROGRESS.items():
        assert list(table.values()) == sorted(set(table.values())), kind  # in order, each stage later
        assert {"working copies", "initialization", "rigid", "checking the result", "resampling"} <= set(table)
    assert "bspline" in STAGE_PROGRESS["bspline"] and "affine" in STAGE_PROGRESS["bspline"]


def test_skipped_registration_reports_no_stage(aligned_ct_case, fast):
    """Scans of one DICOM frame of reference are resampled, not registered: no registration stage is reported."""
    from medfuse.volume import Volume

    def same_frame(v: Volume) -> Volume:
        return Volume(v.array, v.affine, v.modality, {**v.meta, "frame_of_reference": "1.2.3.4"}, v.name)

    calls = []
    result = register(same_frame(aligned_ct_case.mri), same_frame(aligned_ct_case.moving), settings=fast,
                      progress=lambda percent, stage: calls.append(stage))
    assert result.skipped and calls == []


def test_pipeline_progress_carries_the_registration_stages(ct_case):
    """fuse_volumes' progress: loading steps, then each registration stage mapped onto 20-60, then normalizing,
    fusing; the percentages only grow."""
    from medfuse.pipeline import FusionOptions, fuse_volumes

    calls = []
    fuse_volumes(ct_case.mri, ct_case.moving, FusionOptions(method="mean", accept_registration=True),
                 progress=lambda percent, step: calls.append((percent, step)))
    steps = [step for _, step in calls]
    registering = [s for s in steps if s.startswith("registering: ")]
    assert registering == [f"registering: {s}" for s in STAGES["rigid"]]
    assert steps.index("registering") < steps.index(registering[0]) < steps.index("normalizing")
    percents = [percent for percent, _ in calls]
    assert percents == sorted(percents)
    assert all(20 <= p < 60 for p, s in calls if s.startswith("registering"))
