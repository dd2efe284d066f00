"""MedFuse self-test, inside 3D Slicer.

Loads a phantom case (medfuse's digital brain phantom: a T1 MRI and a misaligned PET on its own
grid), runs registration and fusion through the module's logic in a separate process, and checks
that the fused volume has the MRI's geometry, that the quantitative PET is on the MRI grid and that
the registration transform is in the scene, applied to the PET volume.

Run it:

* in Slicer: MedFuse module > Reload and Test (developer mode), or
* from a shell: ``Slicer --no-main-window --python-script slicer_extension/MedFuse/Testing/Python/MedFuseTest.py``
  (add ``--additional-module-paths slicer_extension/MedFuse`` when the module is not installed);
  the exit code is 0 when the test passes, or
* in an extension build tree: ``ctest -R py_MedFuseTest``.

medfuse must be installed in Slicer's Python (the module installs it on first Apply); without it the test is
skipped, with the reason (e.g. the Extensions Index builds, which do not install medfuse).
"""

import os
import sys
import tempfile
import unittest

import numpy as np

import slicer
import slicer.ScriptedLoadableModule  # the module, not the class: a test loader would run the base as a test

if __name__ == "__main__" or "MedFuseLib" not in sys.modules:  # --python-script: make MedFuseLib importable
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def _matrix(node):
    import vtk

    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])


def medfuse_missing():
    """Why the self-test cannot run here, or None."""
    try:
        import medfuse  # noqa: F401
    except ImportError as err:
        return (f"medfuse is not installed in Slicer's Python ({err}): the MedFuse module installs it on its first "
                "Apply; the self-test runs MedFuse on a phantom through medfuse")
    return None


class MedFuseTest(slicer.ScriptedLoadableModule.ScriptedLoadableModuleTest):
    def setUp(self):
        reason = medfuse_missing()
        if reason:
            raise unittest.SkipTest(reason)
        slicer.mrmlScene.Clear()

    def runTest(self):
        reason = medfuse_missing()
        if reason:  # called directly (not through a test runner): say why, do not fail
            self.delayDisplay(f"MedFuse self-test skipped: {reason}")
            return
        self.setUp()
        self.test_phantom_pet_registered_and_fused()

    def _phantom_nodes(self, folder):
        from medfuse.io import save_volume
        from medfuse.phantom import make_case

        case = make_case("pet", seed=0, rotation_deg=(0.0, 0.0, 6.0), translation_mm=(4.0, -3.0, 2.0),
                         mri_shape=(64, 76, 60), noise=False)
        save_volume(case.mri, os.path.join(folder, "mri.nrrd"))
        save_volume(case.moving, os.path.join(folder, "pet.nrrd"))
        reference = slicer.util.loadVolume(os.path.join(folder, "mri.nrrd"), {"name": "phantom T1"})
        moving = slicer.util.loadVolume(os.path.join(folder, "pet.nrrd"), {"name": "phantom PET"})
        return reference, moving

    def test_phantom_pet_registered_and_fused(self):
        from MedFuseLib.logic import MedFuseLogic

        self.delayDisplay("MedFuse: phantom MRI + PET, registration and fusion")
        with tempfile.TemporaryDirectory() as folder:
            reference, moving = self._phantom_nodes(folder)
        logic = MedFuseLogic()
        p = logic.getParameterNode()
        p.referenceVolume, p.movingVolume = reference, moving
        # the names say the modality: detection must find it (never a fixed default)
        self.assertEqual(logic.detectModality(reference), ("MR", "volume name"))
        self.assertEqual(logic.detectModality(moving), ("PT", "volume name"))
        p.referenceModality, p.movingModality = "MR", "PT"
        p.method, p.register, p.registrationType = "mean", True, "rigid"
        nodes = logic.process(p, timeout=900)

        fused = nodes["fused"]
        np.testing.assert_allclose(_matrix(fused), _matrix(reference), atol=1e-4)
        self.assertEqual(fused.GetImageData().GetDimensions(), reference.GetImageData().GetDimensions())
        self.assertEqual(fused.GetImageData().GetNumberOfScalarComponents(), 3)  # PET fused in colour
        quantitative = nodes["quantitative"]
        np.testing.assert_allclose(_matrix(quantitative), _matrix(reference), atol=1e-4)
        transform = nodes["transform"]
        self.assertIsNotNone(slicer.mrmlScene.GetNodeByID(transform.GetID()))
        self.assertEqual(moving.GetTransformNodeID(), transform.GetID())
        self.assertIs(p.outputTransform, transform)
        for composite in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):  # none without a main window
            self.assertEqual(composite.GetBackgroundVolumeID(), fused.GetID())
            self.assertEqual(composite.GetForegroundVolumeID(), quantitative.GetID())
        self.delayDisplay("MedFuse self-test passed")


if __name__ == "__main__":
    result = unittest.TextTestRunner(verbosity=2).run(unittest.defaultTestLoader.loadTestsFromTestCase(MedFuseTest))
    slicer.util.exit(0 if result.wasSuccessful() else 1)
