"""Modality of a volume node from its DICOM attributes (fake nodes, fake slicer.dicomDatabase) or its name."""

from __future__ import annotations

import pytest
from MedFuseLib.modality import detect_modality, modality_for_selection, modality_from_volume_name


class FakeNode:
    def __init__(self, name, attributes=None):
        self._name, self._attributes = name, attributes or {}

    def GetName(self):
        return self._name

    def GetAttribute(self, key):
        return self._attributes.get(key)


class FakeDicomDatabase:
    """ctkDICOMDatabase's fileForInstance/fileValue (instanceValue left out, as in older Slicer)."""

    def __init__(self, modality_by_uid):
        self.files = {uid: f"/db/{uid}.dcm" for uid in modality_by_uid}
        self.values = {f"/db/{uid}.dcm": m for uid, m in modality_by_uid.items()}
        self.asked = []

    def fileForInstance(self, uid):
        return self.files.get(uid, "")

    def fileValue(self, path, tag):
        self.asked.append((path, tag))
        return self.values.get(path, "")


class FakeDicomDatabaseWithInstanceValue(FakeDicomDatabase):
    def instanceValue(self, uid, tag):
        return self.values.get(self.files.get(uid, ""), "")


@pytest.mark.parametrize("database", [FakeDicomDatabase, FakeDicomDatabaseWithInstanceValue])
@pytest.mark.parametrize("dicom_modality, code", [("PT", "PT"), ("NM", "NM"), ("CT", "CT"), ("MR", "MR"),
                                                  (" pt ", "PT")])
def test_dicom_attribute_wins(database, dicom_modality, code):
    db = database({"1.2.3": dicom_modality, "1.2.4": dicom_modality})
    # the name says MR but the DICOM Modality attribute is the truth
    node = FakeNode("3: T1 MPRAGE", {"DICOM.instanceUIDs": "1.2.3 1.2.4"})
    assert detect_modality(node, db) == (code, "DICOM")
    if database is FakeDicomDatabase:
        assert db.asked == [("/db/1.2.3.dcm", "0008,0060")]


def test_unknown_dicom_modality_falls_back_to_name():
    db = FakeDicomDatabase({"1.2.3": "OT"})
    assert detect_modality(FakeNode("FDG PET", {"DICOM.instanceUIDs": "1.2.3"}), db) == ("PT", "volume name")


def test_no_database_uses_name():
    assert detect_modality(FakeNode("sub-01_T1w", {"DICOM.instanceUIDs": "1.2.3"}), None) == ("MR", "volume name")


@pytest.mark.parametrize("name, code", [
    ("sub-01_T1w", "MR"), ("T2 FLAIR", "MR"), ("pet", "PT"), ("FDG-PET AC", "PT"), ("CT head", "CT"),
    ("ct_brain.nrrd", "CT"), ("SPECT", "NM"), ("MRHead", None), ("Volume", None), ("3: Series 3", None), ("", None),
])
def test_volume_name(name, code):
    assert modality_from_volume_name(name) == code


def test_never_a_fixed_default():
    assert detect_modality(FakeNode("Volume"), FakeDicomDatabase({})) == (None, "")
    assert detect_modality(None) == (None, "")


def test_selection_of_a_new_volume_detects_or_asks():
    db = FakeDicomDatabaseWithInstanceValue({"1.2.3": "NM"})
    node = FakeNode("3: Series 3", {"DICOM.instanceUIDs": "1.2.3"})
    assert modality_for_selection(node, "MR", same_node=False, dicom_database=db) == ("NM", "SPECT, from the DICOM")
    assert modality_for_selection(FakeNode("CT head"), "unknown", False) == ("CT", "CT, from the volume name")
    # a new volume that says nothing: "unknown" (Apply stays off), whatever the previous volume was
    assert modality_for_selection(FakeNode("Volume"), "PT", False) == (
        "unknown", "not in the DICOM attributes or the name: choose")


def test_selection_of_the_same_volume_keeps_the_saved_modality():
    """A reopened scene: the panel re-shows the parameter node's volumes; the user's choice stays."""
    assert modality_for_selection(FakeNode("Volume"), "PT", same_node=True) == ("PT", "PET, as chosen")
    assert modality_for_selection(FakeNode("FDG PET"), "PT", same_node=True) == ("PT", "PET, from the volume name")
    # the user overrode a name-based guess: kept
    assert modality_for_selection(FakeNode("FDG PET"), "NM", same_node=True) == ("NM", "SPECT, as chosen")
    # the same volume but nothing chosen yet (e.g. the reference picked automatically): detect
    assert modality_for_selection(FakeNode("sub-01_T1w"), "unknown", same_node=True) == (
        "MR", "MRI, from the volume name")
    assert modality_for_selection(None, "CT", same_node=False) == ("CT", "")
