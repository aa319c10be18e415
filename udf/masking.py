"""Which NDVI observations to hide: random points, contiguous gaps, everything.

Shared by the training objective and the evaluation protocols (docs/DESIGN.md §4), so that both hide values the same way.
All functions take a ``(N, T)`` validity mask and a numpy ``Generator`` and return a ``(N, T)`` boolean mask of the
observations to hide (always a subset of ``valid``).
"""

import numpy as np

__all__ = ["hide_all", "hide_random", "hide_window"]


def hide_random(valid: np.ndarray, fraction: float, rng: np.random.Generator, at_least_one: bool = True) -> np.ndarray:
    """Hide ``round(fraction · n_valid)`` observations of each pixel (at least one where it has two or more)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}.")
    keys = np.where(valid, rng.random(valid.shape), np.inf)
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    n_valid = valid.sum(axis=1, keepdims=True)
    n_hide = np.round(fraction * n_valid)
    if at_least_one:
        n_hide = np.where(n_valid >= 2, np.maximum(n_hide, 1), n_hide)
    return valid & (ranks < n_hide)


def hide_window(valid: np.ndarray, days: np.ndarray, window_days: float, rng: np.random.Generator) -> np.ndarray:
    """Hide every observation inside one contiguous window of ``window_days`` per pixel.

    The window start is drawn uniformly per pixel among the valid observation dates whose window fits inside the
    series (so each pixel loses at least one observation when it has any); a series shorter than the window loses
    everything.

    Args:
        valid: ``(N, T)`` observation mask.
        days: ``(T,)`` time labels in days, or ``(N, T)`` when every sequence has its own dates.
        window_days: window length in days.
        rng: random generator.
    """
    days = np.broadcast_to(np.asarray(days, dtype=np.float64), valid.shape)
    starts_ok = valid & (days + window_days <= days[:, -1:] + 1e-6)
    starts_ok |= valid & ~starts_ok.any(axis=1, keepdims=True)  # short series: any valid start
    keys = np.where(starts_ok, rng.random(valid.shape), -1.0)
    first = np.argmax(keys, axis=1)
    start = np.where(starts_ok.any(axis=1), np.take_along_axis(days, first[:, None], axis=1)[:, 0], np.inf)
    inside = (days >= start[:, None]) & (days < start[:, None] + window_days)
    return valid & inside


def hide_all(valid: np.ndarray) -> np.ndarray:
    """Hide every observation (the S1-only case)."""
    return valid.copy()
