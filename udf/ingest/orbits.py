"""Per-orbit normalisation of Sentinel-1 backscatter before compositing.

Different relative orbits see a pixel under other incidence and azimuth angles, so the same field has another
backscatter level in each; mixing orbits in one series adds a step whenever the orbit changes. On the embedded
WorldCereal series (two ascending relative orbits, 17:32 and 17:40 UTC) the per-pixel VV offset between them spans
−3.1 … +4.2 dB (5th–95th percentile) while its median over pixels is +0.1 dB: the offset belongs to the field, not to
the orbit, so it is estimated per pixel. ``benchmarks/bench_orbit_normalisation.py`` measures the effect (docs/data.md,
"Bring your own region").

Rule: the orbit with the most acquisitions is the reference. For every other orbit, each of its acquisitions is
paired with the closest reference acquisition no more than ``max_gap_days`` away; the pixel's offset is the median
of the paired dB differences (at least ``min_pairs`` valid pairs, else the pixel is left as it is and counted), and
is subtracted from that orbit's dB values. Levels end up on the reference orbit's.
"""

import logging
from dataclasses import dataclass

import numpy as np

from udf.errors import OrbitsNotComparable

__all__ = ["OrbitPlan", "apply_offsets", "pixel_offsets", "plan_orbits"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrbitPlan:
    """Which acquisitions are paired to estimate the offset of each non-reference orbit."""

    reference: str
    """Label of the reference orbit."""
    counts: dict[str, int]
    """Acquisitions per orbit."""
    pairs: dict[str, tuple[np.ndarray, np.ndarray]]
    """Orbit → (indices of its acquisitions, indices of their paired reference acquisitions)."""
    members: dict[str, np.ndarray]
    """Orbit → indices of all its acquisitions."""
    min_pairs: int

    @property
    def others(self) -> list[str]:
        """The orbits that are shifted onto the reference, in a fixed order."""
        return sorted(self.pairs)


def plan_orbits(times: np.ndarray, orbits: np.ndarray, max_gap_days: float = 3.0,
                min_pairs: int = 4) -> OrbitPlan | None:
    """Pair acquisitions of each orbit with the reference orbit's.

    Args:
        times: ``(T,)`` acquisition times (datetime64).
        orbits: ``(T,)`` orbit labels (str); all empty means unknown.
        max_gap_days: largest time difference of a pair.
        min_pairs: fewest pairs an orbit (and a pixel) needs.

    Returns:
        The plan, or None when there is a single orbit or none is known.

    Raises:
        OrbitsNotComparable: labels known for some acquisitions only, or an orbit with fewer than ``min_pairs``
            acquisitions close to a reference one.
    """
    labels = np.asarray(orbits).astype(str)
    known = labels != ""
    if not known.any():
        return None
    if not known.all():
        raise OrbitsNotComparable(
            f"Orbit known for {known.sum()} S1 acquisitions and unknown for {(~known).sum()} (e.g. "
            f"{str(np.asarray(times)[~known][0])[:19]}); give every acquisition an orbit (sidecar 'orbit' column, "
            "image ids or ASC/DESC in file names) or pass --orbit-normalisation none."
        )
    names, counts = np.unique(labels, return_counts=True)
    if names.size == 1:
        return None
    reference = str(names[np.lexsort((names, -counts))[0]])
    days = np.asarray(times).astype("datetime64[s]").astype(np.float64) / 86400.0
    ref_idx = np.flatnonzero(labels == reference)
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:
        if name == reference:
            continue
        own = np.flatnonzero(labels == name)
        nearest = ref_idx[np.argmin(np.abs(days[own][:, None] - days[ref_idx][None, :]), axis=1)]
        close = np.abs(days[own] - days[nearest]) <= max_gap_days
        if close.sum() < min_pairs:
            raise OrbitsNotComparable(
                f"S1 orbit {name} has {close.sum()} acquisition(s) within {max_gap_days:g} days of one of the "
                f"reference orbit {reference}; at least {min_pairs} are needed to estimate its offset. Pass "
                "--orbit-normalisation none, or a longer --orbit-pair-days."
            )
        pairs[str(name)] = (own[close], nearest[close])
    members = {str(n): np.flatnonzero(labels == n) for n in names}
    plan = OrbitPlan(reference, {str(n): int(c) for n, c in zip(names, counts)}, pairs, members, min_pairs)
    _log.info("S1 orbits %s; reference %s; pairs %s", plan.counts, reference, {k: len(v[0]) for k, v in pairs.items()})
    return plan


def pixel_offsets(linear: np.ndarray, plan: OrbitPlan) -> np.ndarray:
    """Per-pixel dB offset of each non-reference orbit to the reference.

    Args:
        linear: ``(T, B, Y, X)`` linear power, NaN where no data.
        plan: from :func:`plan_orbits`.

    Returns:
        float32 ``(len(plan.others), B, Y, X)``: median of paired dB differences; NaN where fewer than
        ``plan.min_pairs`` valid pairs.
    """
    out = np.full((len(plan.others),) + linear.shape[1:], np.nan, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, name in enumerate(plan.others):
            own, ref = plan.pairs[name]
            diff = 10.0 * np.log10(linear[own].astype(np.float64) / linear[ref].astype(np.float64))
            diff[~np.isfinite(diff)] = np.nan
            enough = np.isfinite(diff).sum(axis=0) >= plan.min_pairs
            if enough.any():
                med = np.nanmedian(np.where(enough[None], diff, 0.0), axis=0)
                out[i] = np.where(enough, med, np.nan)
    return out


def apply_offsets(linear: np.ndarray, offsets: np.ndarray, plan: OrbitPlan) -> np.ndarray:
    """Shift each non-reference orbit by its per-pixel offset (pixels with a NaN offset are left unchanged)."""
    out = linear.astype(np.float32, copy=True)
    for i, name in enumerate(plan.others):
        gain = np.where(np.isfinite(offsets[i]), 10.0 ** (-offsets[i] / 10.0), 1.0).astype(np.float32)
        idx = plan.members[name]
        out[idx] = out[idx] * gain[None]
    return out
