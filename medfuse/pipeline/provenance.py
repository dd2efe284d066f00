"""One record of how an output was made, built the same way by every door.

A :class:`Provenance` starts with the command and collects one structured entry per step as the steps run
(as TorchIO's ``Subject.applied_transforms`` does): reading, the pair check, alignment, normalization,
colour, fusion, writing. :meth:`Provenance.record` is the sidecar (:mod:`medfuse.report.sidecar` writes it):
medfuse's version, the command, Python's version, the parts the caller adds and the steps.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Provenance"]


class Provenance:
    """How an output was made: the command and the steps, in the order they ran.

    Args:
        command: what made it (``fuse``, ``register``, ``batch``, ``monai``...).

    Example:
        >>> p = Provenance("fuse")
        >>> _ = p.add("fuse", method="max")
        >>> p.record(output="fused.nii.gz")["steps"]
        [{'step': 'fuse', 'method': 'max'}]
    """

    def __init__(self, command: str):
        self.command = command
        self.steps: list[dict[str, Any]] = []

    def add(self, step: str, **details: Any) -> dict[str, Any]:
        """Append the entry of one step (JSON-ready details) and return it."""
        entry = {"step": step, **details}
        self.steps.append(entry)
        return entry

    def find(self, step: str) -> dict[str, Any] | None:
        """The last entry of ``step``, None when it did not run."""
        return next((entry for entry in reversed(self.steps) if entry["step"] == step), None)

    def record(self, **parts: Any) -> dict[str, Any]:
        """The sidecar: medfuse's version, the command, Python's version, ``parts`` and the steps."""
        import platform

        from medfuse import __version__

        return {"medfuse_version": __version__, "command": self.command, "python": platform.python_version(),
                **parts, "steps": [dict(entry) for entry in self.steps]}
