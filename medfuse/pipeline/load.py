"""Step 1: read the pair. Each input is read under its role, so that no message or log line names its path."""

from __future__ import annotations

import os

from medfuse.errors import SpaceMismatchError
from medfuse.pipeline.options import RegistrationOptions
from medfuse.volume import Volume

__all__ = ["load_inputs", "role_label", "ROLES"]

#: the two inputs of a pair
ROLES = ("reference", "moving")


def role_label(role: str) -> str:
    """How messages and logs name an input read through the pipeline: by its role, never by its path (folder
    and file names may be identifiers; see :mod:`medfuse.io.naming`)."""
    return f"the {role} scan"


def load_inputs(
    reference: str | os.PathLike,
    moving: str | os.PathLike,
    options: RegistrationOptions | None = None,
) -> tuple[Volume, Volume]:
    """Read the two inputs and decide their modalities; nothing is checked as a pair or registered yet (the pair
    check belongs to the step that uses the pair: :func:`medfuse.pipeline.fuse_volumes`,
    :func:`medfuse.pipeline.register_files`).

    Args:
        reference, moving: paths (see :func:`medfuse.io.load_volume`).
        options: how each input is read (``options.reference``, ``options.moving``: :class:`InputOptions`).

    Returns:
        ``(reference, moving)``, each with a known modality (:mod:`medfuse.modality`), named by its role.

    Raises:
        UnknownModalityError: nothing tells an input's modality; any error of the readers. Every medfuse error
            carries the input's ``role`` (the command line then names ``--moving-series``...), and its message
            names the input by its role, never by its path.
        SpaceMismatchError: a 2D and a 3D input.
    """
    from medfuse.io import load_volume
    from medfuse.io.naming import read_as
    from medfuse.modality import require_modality

    options = options or RegistrationOptions()
    volumes = []
    for role, path in zip(ROLES, (reference, moving)):
        label = role_label(role)
        with read_as(path, label, role):  # messages and logs name the input by its role, never by its path
            volume = load_volume(path, **options.input(role).load_kwargs())
            volume.source = label
            require_modality(volume, role)
        volumes.append(volume)
    ref, mov = volumes
    if ref.ndim != mov.ndim:
        raise SpaceMismatchError(
            f"{role_label('moving')} is {mov.ndim}D and {role_label('reference')} is {ref.ndim}D; give two "
            "volumes or two slices", role="moving",
        )
    return ref, mov
