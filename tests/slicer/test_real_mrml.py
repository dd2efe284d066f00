"""MedFuseLib.logic on Slicer's own MRML classes (slicer-core), with real scans and a real medfuse run (issue 27).

Inputs made independently of the code under test: the SPM12 T1 and PET templates (``$MEDFUSE_REAL_DATA/templates``,
one grid, aligned by construction, stored LAS); the PET moved by a known rigid transform ``R`` by rewriting its
affine with nibabel. Slicer's NIfTI reader flips the T1's slice order (its IJK->RAS has k pointing inferior), so the
checks compare world coordinates, never voxel indices.

Checked: the module's storage-node export writes LPS NRRD headers that put every voxel at its nibabel world position;
medfuse's RGB result loads as a ``vtkMRMLVectorVolumeNode`` with the reference's geometry; the ``.tfm`` (medfuse's
registration, and the exact ``R`` written by medfuse's writer) loads under the reference's parent transform so that
the moving volume's landmarks land on the reference's in world coordinates; the colour node IDs exist once
``vtkMRMLColorLogic`` has filled the scene; the parameter node's values survive a scene saved and read back.
Skipped with the reason when slicer-core or the real scans are absent.
"""

from __future__ import annotations

import numpy as np
import pytest

import real_mrml

pytestmark = pytest.mark.real

#: the known misalignment of the moving PET: 6 degrees about z and (5, -4, 3) mm, in RAS
ANGLE = np.deg2rad(6.0)
R = np.array([[np.cos(ANGLE), -np.sin(ANGLE), 0, 5.0], [np.sin(ANGLE), np.cos(ANGLE), 0, -4.0], [0, 0, 1, 3.0],
              [0, 0, 0, 1]])
#: the reference's own parent transform in the scene: 10 degrees about x and (2, 3, -4) mm
BETA = np.deg2rad(10.0)
P = np.array([[1, 0, 0, 2.0], [0, np.cos(BETA), -np.sin(BETA), 3.0], [0, np.sin(BETA), np.cos(BETA), -4.0],
              [0, 0, 0, 1]])
F = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS <-> LPS
#: landmarks in the reference's own RAS (mm): inside the brain of the MNI templates
LANDMARKS = np.array([[0, -18, 18], [-40, -20, 10], [40, -20, 10], [0, 50, 0], [0, -80, 10], [0, -20, 60]], float)


def _matrix(vtk_matrix):
    return np.array([[vtk_matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


def _ijk_to_ras(node):
    import vtk

    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return _matrix(m)


def _to_world(node, points_ras):
    """Points of ``node``'s own RAS space in world RAS, through its parent transforms (Slicer's own computation)."""
    import vtk

    transform = vtk.vtkGeneralTransform()
    parent = node.GetParentTransformNode()
    if parent is None:
        return np.array(points_ras)
    parent.GetTransformToWorld(transform)
    return np.array([transform.TransformPoint(*map(float, p)) for p in points_ras])


def _nrrd_header(path):
    header = {}
    with open(path, "rb") as f:
        for line in f:
            line = line.decode("latin-1").rstrip("\n")
            if not line:
                break
            if ": " in line and not line.startswith("#"):
                key, value = line.split(": ", 1)
                header[key] = value
    return header


def _vectors(text):
    return [[float(x) for x in v.strip("()").split(",")] for v in text.split() if v != "none"]


@pytest.fixture()
def mrml(tmp_path, monkeypatch):
    return real_mrml.Harness(monkeypatch, tmp_path / "Slicer", tmp_path / "ext" / "MedFuse" / "MedFuse.py")


@pytest.fixture(scope="module")
def templates(real_dir, tmp_path_factory):
    nib = pytest.importorskip("nibabel")
    real_mrml.real_slicer()
    folder = tmp_path_factory.mktemp("templates")
    t1 = real_dir / "templates" / "spm_T1.nii"
    pet = nib.load(real_dir / "templates" / "spm_PET.nii")
    moved = folder / "pet_moved.nii"
    nib.save(nib.Nifti1Image(np.asarray(pet.dataobj), R @ pet.affine), moved)
    return {"t1": t1, "pet": moved, "folder": folder}


def _load_pair(mrml, templates):
    reference = mrml.slicer.util.loadVolume(templates["t1"], {"name": "T1 template"})
    moving = mrml.slicer.util.loadVolume(templates["pet"], {"name": "PET template"})
    return reference, moving


@pytest.fixture(scope="module")
def medfuse_run(templates):
    """The module's export of the pair from a real scene, then a real ``medfuse fuse`` (rigid, mean) on it."""
    from medfuse.pipeline import FusionOptions, InputOptions, fuse_files

    folder = templates["folder"] / "run"
    folder.mkdir()
    with pytest.MonkeyPatch.context() as monkeypatch:
        mrml = real_mrml.Harness(monkeypatch, folder / "Slicer", folder / "MedFuse.py")
        from MedFuseLib.logic import MedFuseLogic

        reference, moving = _load_pair(mrml, templates)
        logic = MedFuseLogic()
        logic._export(reference, folder / "reference.nrrd", print)
        logic._export(moving, folder / "moving.nrrd", print)
        matrices = {"reference": _ijk_to_ras(reference), "moving": _ijk_to_ras(moving)}
    outputs = fuse_files(folder / "reference.nrrd", folder / "moving.nrrd", folder / "fused.nrrd", FusionOptions(method="mean", qc=False, register=True, registration_type="rigid", transform_out=folder / "transform.tfm", reference=InputOptions(modality="MR"), moving=InputOptions(modality="PT")))
    return {"outputs": outputs, "folder": folder, "matrices": matrices}


# -- export ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role,source", [("reference", "t1"), ("moving", "pet")])
def test_storage_node_export_writes_lps_nrrd_at_the_nibabel_positions(templates, medfuse_run, role, source):
    nib = pytest.importorskip("nibabel")
    nrrd = pytest.importorskip("nrrd")
    path = medfuse_run["folder"] / f"{role}.nrrd"
    header = _nrrd_header(path)
    assert header["space"] == "left-posterior-superior" and header["encoding"] == "raw"  # uncompressed
    directions = np.array(_vectors(header["space directions"])).T  # columns: the i, j, k axes in LPS
    origin = np.array(_vectors(header["space origin"])[0])
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3], ijk_to_lps[:3, 3] = directions, origin
    ijk_to_ras = F @ ijk_to_lps
    np.testing.assert_allclose(ijk_to_ras, medfuse_run["matrices"][role], atol=1e-6)  # the node's geometry
    # every voxel of the file at the world position nibabel gives the source voxel with the same value
    source_img = nib.load(templates[source])
    data, _ = nrrd.read(str(path), index_order="F")
    src = np.asarray(source_img.dataobj, dtype=np.float64)
    ijk = np.indices(data.shape).reshape(3, -1)
    world = ijk_to_ras[:3, :3] @ ijk + ijk_to_ras[:3, 3:4]
    src_ijk = np.linalg.inv(source_img.affine)[:3] @ np.vstack([world, np.ones(world.shape[1])])
    np.testing.assert_allclose(src_ijk, np.round(src_ijk), atol=1e-4)  # on the source grid
    idx = tuple(np.round(src_ijk).astype(int))
    np.testing.assert_allclose(data[tuple(ijk)], src[idx], rtol=1e-5, atol=1e-5)


# -- results -------------------------------------------------------------------------------------------
def _parent(mrml):
    import vtk

    node = mrml.slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "reference placement")
    m = vtk.vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            m.SetElement(i, j, P[i, j])
    node.SetMatrixTransformToParent(m)
    return node


def _results(mrml, templates, outputs):
    from MedFuseLib.logic import MedFuseLogic

    reference, moving = _load_pair(mrml, templates)
    parent = _parent(mrml)
    reference.SetAndObserveTransformNodeID(parent.GetID())
    logic = MedFuseLogic()
    p = logic.getParameterNode()
    p.referenceVolume, p.movingVolume = reference, moving
    p.referenceModality, p.movingModality, p.method = "MR", "PT", "mean"
    nodes = logic.loadResults(p, outputs)
    return logic, p, reference, moving, parent, nodes


def test_rgb_result_is_a_vector_volume_with_the_reference_geometry(mrml, templates, medfuse_run):
    logic, p, reference, moving, parent, nodes = _results(mrml, templates, medfuse_run["outputs"])
    fused, quantitative = nodes["fused"], nodes["quantitative"]
    assert fused.IsA("vtkMRMLVectorVolumeNode") and fused.GetImageData().GetNumberOfScalarComponents() == 3
    assert fused.GetImageData().GetScalarTypeAsString() == "unsigned char"
    for node in (fused, quantitative):
        np.testing.assert_allclose(_ijk_to_ras(node), _ijk_to_ras(reference), atol=1e-4)
        assert node.GetImageData().GetDimensions() == reference.GetImageData().GetDimensions()
        assert node.GetParentTransformNode() is parent  # with the reference, under its transform
        assert node.GetStorageNode().GetFileName() in ("", None)  # the temporary files are not referenced
    assert p.fusedVolume is fused and p.quantitativeVolume is quantitative
    for composite in mrml.getNodesByClass("vtkMRMLSliceCompositeNode"):
        assert composite.GetBackgroundVolumeID() == fused.GetID()
        assert composite.GetForegroundVolumeID() == quantitative.GetID()
        assert composite.GetForegroundOpacity() == pytest.approx(0.5)


def _landmark_error(moving, reference):
    """mm between each landmark of the reference in world and the same anatomy of the moving volume in world."""
    on_reference = _to_world(reference, LANDMARKS)
    in_moving_space = (R[:3, :3] @ LANDMARKS.T).T + R[:3, 3]  # where the moved PET holds that anatomy
    on_moving = _to_world(moving, in_moving_space)
    return np.linalg.norm(on_moving - on_reference, axis=1)


def test_registration_transform_aligns_the_moving_volume_under_the_reference_parent(mrml, templates, medfuse_run):
    logic, p, reference, moving, parent, nodes = _results(mrml, templates, medfuse_run["outputs"])
    transform = nodes["transform"]
    assert transform.GetParentTransformNode() is parent and moving.GetParentTransformNode() is transform
    assert p.outputTransform is transform
    before = np.linalg.norm(_to_world(reference, LANDMARKS) - ((R[:3, :3] @ LANDMARKS.T).T + R[:3, 3]), axis=1)
    error = _landmark_error(moving, reference)
    assert before.min() > 5.0  # misaligned by the parent transform and R to start with
    # within 2 voxels (2 mm templates, 8 mm FWHM): what rigid PET-to-T1 registration can be held to here; a transform
    # applied in the wrong direction would leave 2x the misalignment (> 10 mm at these landmarks)
    assert error.max() < 4.0, error


def test_exact_tfm_written_by_medfuse_puts_landmarks_on_the_reference(mrml, templates, tmp_path):
    """The direction convention alone: the true transform, written by medfuse's own writer."""
    from medfuse.registration.transform import save_transform, transform_from_matrix_ras

    tfm = save_transform(transform_from_matrix_ras(R), tmp_path / "exact.tfm")
    logic, p, reference, moving, parent, nodes = _results(mrml, templates, {"fused": templates["t1"],
                                                                            "transform": tfm})
    assert _landmark_error(moving, reference).max() < 1e-3
    # a rerun replaces the moving volume's transform (never chained)
    again = logic.loadResults(p, {"fused": templates["t1"], "transform": tfm})
    assert moving.GetParentTransformNode() is again["transform"]
    assert again["transform"].GetParentTransformNode() is parent
    assert _landmark_error(moving, reference).max() < 1e-3


# -- colours -------------------------------------------------------------------------------------------
def test_colour_node_ids_exist_in_slicers_colour_logic(mrml):
    from MedFuseLib.logic import PET_COLOR_NODE_ID, SPECT_COLOR_NODE_ID

    real = mrml.real
    scene = mrml.slicer.mrmlScene
    for node_id, kind in ((PET_COLOR_NODE_ID, real.vtkMRMLPETProceduralColorNode.PETheat),
                          (SPECT_COLOR_NODE_ID, real.vtkMRMLPETProceduralColorNode.PETrainbow2)):
        assert node_id == real.vtkMRMLColorLogic.GetPETColorNodeID(kind)
        node = scene.GetNodeByID(node_id)
        assert node is not None and node.IsA("vtkMRMLPETProceduralColorNode")


def test_pet_overlay_uses_the_pet_colour_node(mrml, templates, medfuse_run):
    from MedFuseLib.logic import PET_COLOR_NODE_ID

    logic, p, reference, moving, parent, nodes = _results(mrml, templates, medfuse_run["outputs"])
    display = nodes["quantitative"].GetDisplayNode()
    assert display.GetColorNodeID() == PET_COLOR_NODE_ID and display.GetColorNode() is not None


# -- saved scene -----------------------------------------------------------------------------------------
def test_parameter_node_survives_scene_save_and_reload(mrml, templates, tmp_path):
    from medfuse.registration.transform import save_transform, transform_from_matrix_ras
    from MedFuseLib.logic import MedFuseLogic

    tfm = save_transform(transform_from_matrix_ras(R), tmp_path / "exact.tfm")
    logic, p, reference, moving, parent, nodes = _results(mrml, templates, {"fused": templates["t1"],
                                                                            "transform": tfm})
    p.referenceModality, p.movingModality = "MR", "NM"  # a choice the user made
    p.method, p.register, p.registrationType, p.window, p.colormap = "guided", False, "affine", "bone", "gray"
    p.device, p.acceptRegistration, p.keepHot, p.overlayOpacity = "cuda", True, False, 0.35
    saved = {name: getattr(p, name) for name in ("referenceModality", "movingModality", "method", "register",
                                                 "registrationType", "window", "colormap", "device",
                                                 "acceptRegistration", "keepHot", "overlayOpacity")}
    geometry = {"referenceVolume": _ijk_to_ras(reference), "movingVolume": _ijk_to_ras(moving)}
    # File > Save: the volumes and transforms written by their storage nodes, then the .mrml
    scene = mrml.slicer.mrmlScene
    folder = tmp_path / "scene"
    folder.mkdir()
    data = mrml.getNodesByClass("vtkMRMLVolumeNode") + mrml.getNodesByClass("vtkMRMLTransformNode")
    assert len(data) == 5  # reference, moving, fused, parent transform, registration transform
    for node in data:
        storage = node.GetStorageNode()
        if storage is None:
            node.AddDefaultStorageNode()
            storage = node.GetStorageNode()
        extension = ".h5" if node.IsA("vtkMRMLTransformNode") else ".nrrd"
        storage.SetFileName(str(folder / f"{node.GetID()}{extension}"))
        assert storage.WriteData(node), node.GetName()
    scene.SetRootDirectory(str(folder))
    scene.SetURL(str(folder / "medfuse.mrml"))
    assert scene.Commit()
    # File > Close scene, then open the saved one
    reopened = mrml.newScene()
    reopened.SetURL(str(folder / "medfuse.mrml"))
    assert reopened.Connect()
    q = MedFuseLogic().getParameterNode()
    assert q.parameterNode.GetID() == p.parameterNode.GetID() and q.parameterNode.GetScene() is reopened
    assert {name: getattr(q, name) for name in saved} == saved
    for name, matrix in geometry.items():
        node = getattr(q, name)
        assert node is not None and node.GetScene() is reopened and node.GetImageData() is not None
        np.testing.assert_allclose(_ijk_to_ras(node), matrix, atol=1e-4)
    assert q.movingVolume.GetParentTransformNode().GetID() == q.outputTransform.GetID()
    assert q.referenceVolume.GetParentTransformNode().GetName() == "reference placement"
    assert _landmark_error(q.movingVolume, q.referenceVolume).max() < 1e-3  # the transforms read back as saved
