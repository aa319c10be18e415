"""Evaluation protocols (docs/DESIGN.md §4): what is hidden, and which pixels train and which score.

- **P1** random: hide 20 % of each pixel's valid NDVI observations.
- **P2** long gap: hide every observation inside one contiguous 60-day (``P2_60``) or 90-day (``P2_90``) window.
- **P3** S1-only: hide all NDVI; score on all valid observations.
- **Spatial hold-out**: square blocks go to train / validation / test; a pixel within ``buffer`` pixels of a block
  of a higher-priority split (test > validation > train) is dropped, so no training label is a 3×3 neighbour of a
  test pixel.

Masks are generated once per protocol with a fixed seed and shared by every method.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from udf.errors import CubeTooSmall
from udf.masking import hide_all, hide_random, hide_window

__all__ = ["PROTOCOLS", "Protocol", "SpatialSplit", "hide_protocols", "make_protocols", "spatial_block_split"]

PROTOCOLS = ("P1", "P2_60", "P2_90", "P3")


@dataclass(frozen=True)
class SpatialSplit:
    """Boolean ``(y, x)`` masks of the training, validation and test pixels (disjoint, buffered)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    block: int
    """Block edge in pixels."""
    buffer: int
    """Pixels dropped around higher-priority blocks."""
    seed: int
    """Seed of the block permutation."""

    def describe(self) -> dict:
        """Counts for reports and checkpoint metadata."""
        return {"block_px": self.block, "buffer_px": self.buffer, "seed": self.seed, "train_px": int(self.train.sum()),
                "val_px": int(self.val.sum()), "test_px": int(self.test.sum())}


def _near(mask: np.ndarray, buffer: int) -> np.ndarray:
    out = mask.copy()
    ny, nx = mask.shape
    for dy in range(-buffer, buffer + 1):
        for dx in range(-buffer, buffer + 1):
            shifted = np.zeros_like(mask)
            shifted[max(dy, 0):ny + min(dy, 0), max(dx, 0):nx + min(dx, 0)] = \
                mask[max(-dy, 0):ny + min(-dy, 0), max(-dx, 0):nx + min(-dx, 0)]
            out |= shifted
    return out


def spatial_block_split(shape: tuple[int, int], block: int = 8, fractions: tuple[float, float] = (0.25, 0.15),
                        buffer: int = 1, seed: int = 0) -> SpatialSplit:
    """Assign square blocks of pixels to test, validation and train.

    Args:
        shape: ``(ny, nx)`` of the cube.
        block: block edge in pixels.
        fractions: shares of blocks for (test, validation); at least one block each; the rest trains.
        buffer: pixels dropped around blocks of a higher-priority split.
        seed: seed of the block permutation.
    """
    ny, nx = shape
    by, bx = -(-ny // block), -(-nx // block)
    n_blocks = by * bx
    n_test = max(1, int(round(fractions[0] * n_blocks)))
    n_val = max(1, int(round(fractions[1] * n_blocks)))
    if n_test + n_val >= n_blocks:
        raise CubeTooSmall(f"A {ny}×{nx} cube has {n_blocks} blocks of {block} px: too few for test, val and train "
                           "(at least 3 are needed; use a smaller --block).")
    perm = np.random.default_rng(seed).permutation(n_blocks)
    label = np.full(n_blocks, 2)
    label[perm[:n_test]], label[perm[n_test:n_test + n_val]] = 0, 1
    grid = label.reshape(by, bx).repeat(block, axis=0).repeat(block, axis=1)[:ny, :nx]
    test = grid == 0
    val = (grid == 1) & ~_near(test, buffer)
    train = (grid == 2) & ~_near(test | (grid == 1), buffer)
    return SpatialSplit(train=train, val=val, test=test, block=block, buffer=buffer, seed=seed)


@dataclass(frozen=True)
class Protocol:
    """One protocol's hidden observations: ``hidden`` ``(t, y, x)`` (only on the scored pixels).

    ``pixels`` (``(y, x)`` bool) is set by protocols that choose their own scored pixels (P3S, P3C in
    :mod:`udf.evaluation.shift_protocols`: the whole hidden area); None means the run's scored pixels.
    """

    name: str
    hidden: np.ndarray
    pixels: Optional[np.ndarray] = None

    def apply(self, ndvi: np.ndarray) -> np.ndarray:
        """NDVI ``(t, y, x)`` with the hidden observations set to NaN (what every method gets as input)."""
        return np.where(self.hidden, np.nan, ndvi).astype(np.float32)


def make_protocols(ndvi: np.ndarray, days: np.ndarray, pixels: np.ndarray,
                   names: tuple[str, ...] = PROTOCOLS, seed: int = 0) -> dict[str, Protocol]:
    """Draw the hidden observations of each protocol on the given pixels.

    Args:
        ndvi: ``(t, y, x)`` observed NDVI (NaN missing).
        days: ``(t,)`` time labels in days.
        pixels: ``(y, x)`` pixels to score; others keep all their observations.
        names: protocols among :data:`PROTOCOLS`.
        seed: base seed; each protocol gets its own stream derived from it.
    """
    nt = ndvi.shape[0]
    valid = np.isfinite(ndvi).reshape(nt, -1).T & pixels.ravel()[:, None]
    return {name: Protocol(name=name, hidden=hidden.T.reshape(ndvi.shape))
            for name, hidden in hide_protocols(valid, days, names, seed).items()}


def hide_protocols(valid: np.ndarray, days: np.ndarray, names: tuple[str, ...] = PROTOCOLS,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """The hidden observations ``(N, T)`` of each protocol for sequences with validity ``valid`` ``(N, T)``.

    Args:
        valid: ``(N, T)`` observed NDVI.
        days: ``(T,)`` or ``(N, T)`` days.
        names: protocols among :data:`PROTOCOLS`.
        seed: base seed; each protocol gets its own stream derived from it (the same as :func:`make_protocols`).
    """
    unknown = [n for n in names if n not in PROTOCOLS]
    if unknown:
        raise ValueError(f"Unknown protocol(s) {unknown}; known: {PROTOCOLS}.")
    out = {}
    for k, name in enumerate(PROTOCOLS):
        if name not in names:
            continue
        rng = np.random.default_rng([seed, k])
        if name == "P1":
            out[name] = hide_random(valid, 0.2, rng)
        elif name.startswith("P2_"):
            out[name] = hide_window(valid, days, float(name[3:]), rng)
        else:
            out[name] = hide_all(valid)
    return out
