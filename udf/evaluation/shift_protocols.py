"""Protocols where the clear pixels are not like the cloudy ones (issue 18): P3S and P3C.

- **P3S** "S2 elsewhere": every NDVI observation of alternate ``block × block`` pixel blocks (a checkerboard) is
  hidden; the other blocks keep all theirs. Scored on the hidden blocks.
- **P3C** "one land cover clouded": every NDVI observation of the pixels of one class is hidden; every other pixel
  (other classes and unclassified pixels) keeps all its observations. One protocol per class, named
  ``P3C:<class name>``; scored on that class's pixels.

Both return :class:`udf.evaluation.protocols.Protocol` objects like :func:`udf.evaluation.protocols.make_protocols`
(``hidden`` ``(t, y, x)``, a subset of the valid NDVI), with ``pixels`` set to the pixels they score (the hidden area
over the whole cube, not a spatial split's test blocks). They are deterministic: no random draw.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from udf.evaluation.land_cover import NO_CLASS, LandCover
from udf.evaluation.protocols import Protocol

__all__ = ["SHIFT_PROTOCOLS", "checker_blocks", "class_protocols", "hide_class", "hide_checker", "hide_class_rows"]

SHIFT_PROTOCOLS = ("P3S", "P3C")


def checker_blocks(shape: tuple[int, int], block: int = 8, phase: int = 0) -> np.ndarray:
    """``(y, x)`` bool: True on alternate ``block × block`` blocks (the block at the origin is hidden for phase 0).

    Args:
        shape: ``(ny, nx)``.
        block: block edge in pixels (≥ 1).
        phase: 0 or 1; phase 1 is the complement of phase 0.
    """
    if block < 1:
        raise ValueError(f"Checkerboard block must be ≥ 1 pixel, got {block}.")
    if phase not in (0, 1):
        raise ValueError(f"Checkerboard phase must be 0 or 1, got {phase}.")
    ny, nx = shape
    by, bx = np.arange(ny) // block, np.arange(nx) // block
    return ((by[:, None] + bx[None, :] + phase) % 2) == 0


def hide_checker(ndvi: np.ndarray, block: int = 8, phase: int = 0, name: str = "P3S") -> Protocol:
    """P3S: hide every valid NDVI observation ``(t, y, x)`` of alternate ``block``-px blocks.

    Raises:
        ValueError: ``ndvi`` is not ``(t, y, x)``, or the hidden blocks or the kept blocks have no valid NDVI (the
            scenario needs both).
    """
    if ndvi.ndim != 3:
        raise ValueError(f"P3S needs NDVI as (t, y, x), got shape {ndvi.shape}.")
    blocks = checker_blocks(ndvi.shape[1:], block, phase)
    valid = np.isfinite(ndvi)
    hidden = valid & blocks[None]
    if not hidden.any() or not (valid & ~blocks[None]).any():
        raise ValueError(f"P3S with {block}-px blocks on a {ndvi.shape[1]}×{ndvi.shape[2]} cube: the "
                         f"{'hidden' if not hidden.any() else 'kept'} blocks have no valid NDVI; use a smaller "
                         "--checker-block.")
    return Protocol(name=name, hidden=hidden, pixels=blocks & valid.any(0))


def hide_class(ndvi: np.ndarray, classes: np.ndarray, cls: int, name: Optional[str] = None) -> Protocol:
    """P3C for one class: hide every valid NDVI observation ``(t, y, x)`` of the pixels with ``classes == cls``.

    Raises:
        ValueError: shapes differ, ``cls`` is :data:`udf.evaluation.land_cover.NO_CLASS`, or the class has no valid NDVI.
    """
    if ndvi.ndim != 3 or classes.shape != ndvi.shape[1:]:
        raise ValueError(f"P3C needs NDVI (t, y, x) and classes (y, x) on the same grid, got {ndvi.shape} and "
                         f"{classes.shape}.")
    if cls == NO_CLASS:
        raise ValueError("P3C cannot hide the 'no class' pixels (-1): they are not one land cover.")
    members = classes == cls
    hidden = np.isfinite(ndvi) & members[None]
    if not hidden.any():
        raise ValueError(f"P3C: class {cls} has no pixel with valid NDVI ({int(members.sum())} pixels).")
    return Protocol(name=name or f"P3C:{cls}", hidden=hidden, pixels=members & np.isfinite(ndvi).any(0))


def class_protocols(ndvi: np.ndarray, land: LandCover, min_size: int = 20) -> dict[str, Protocol]:
    """P3C for every class with at least ``min_size`` pixels that have valid NDVI, named ``P3C:<class name>``.

    Classes are taken largest first. Raises ``ValueError`` when no class is large enough (the message lists the
    class sizes).
    """
    valid_px = np.isfinite(ndvi).any(0)
    sizes = {c: int((valid_px & (land.classes == c)).sum()) for c in land.sizes()}
    keep = sorted((c for c, n in sizes.items() if n >= min_size), key=lambda c: (-sizes[c], c))
    if not keep:
        raise ValueError(f"P3C: no class has ≥ {min_size} pixels with NDVI (sizes: "
                         f"{ {land.name(c): n for c, n in sizes.items()} }); lower --class-min-size.")
    return {f"P3C:{land.name(c)}": hide_class(ndvi, land.classes, c, f"P3C:{land.name(c)}") for c in keep}


def hide_class_rows(valid: np.ndarray, classes: np.ndarray, cls: int) -> np.ndarray:
    """P3C on sequences: the hidden observations ``(N, T)`` when every sequence of class ``cls`` loses all its NDVI."""
    if classes.shape != valid.shape[:1]:
        raise ValueError(f"P3C needs one class per sequence: classes {classes.shape}, sequences {valid.shape}.")
    return valid & (classes == cls)[:, None]
