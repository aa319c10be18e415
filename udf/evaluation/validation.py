"""Scoring a model on held-out sequences under the evaluation protocols, and calibrating its predictive std.

Used for early stopping (validation sequences of the training sites or blocks), for the std calibration, for the
held-out metrics stored in a checkpoint, and by ``s1ndvi adapt``'s trust report. The protocols are those of
:mod:`udf.evaluation.protocols` (P1 random 20 %, P2 60/90-day gaps, P3 S1 only), drawn once per set with a fixed seed.
"""

from dataclasses import dataclass

import numpy as np
import torch

from udf.evaluation.metrics import score
from udf.evaluation.protocols import PROTOCOLS, hide_protocols
from udf.inference import predict_series
from udf.model import FusionNet
from udf.selfcal import SelfCalibration, self_calibrate
from udf.training.corpus.series import SeriesSet

__all__ = ["MaskedSet", "aggregate", "calibrate_std", "coverage", "mask_sets", "predict_set", "score_masked"]


@dataclass
class MaskedSet:
    """One protocol applied to one series set: what the model gets and what it is scored on."""

    site: str
    protocol: str
    series: SeriesSet
    hidden: np.ndarray
    """``(N, T)`` observations hidden from the model (scored)."""

    def kept_ndvi(self) -> np.ndarray:
        """NDVI given to the model ``(N, T)``."""
        return np.where(self.hidden, np.float32(np.nan), self.series.ndvi)


def mask_sets(sets: list[SeriesSet], protocols: tuple[str, ...] = PROTOCOLS, seed: int = 0,
              max_sequences: int | None = 2000) -> list[MaskedSet]:
    """Each protocol on each set (a seeded subsample of at most ``max_sequences`` sequences per set)."""
    out = []
    for k, s in enumerate(sets):
        if max_sequences is not None and s.n > max_sequences:
            s = s.subset(np.sort(np.random.default_rng([seed, k]).permutation(s.n)[:max_sequences]))
        valid = np.isfinite(s.ndvi)
        for name, hidden in hide_protocols(valid, s.days, protocols, seed=seed + k).items():
            out.append(MaskedSet(site=s.site, protocol=name, series=s, hidden=hidden))
    return out


def predict_set(model: FusionNet, s1: np.ndarray, ndvi: np.ndarray, days: np.ndarray, std_scale: float = 1.0,
                batch_size: int = 2048, self_calibration: bool = False, seed: int = 0,
                calibrate_on: SeriesSet | None = None) -> tuple[np.ndarray, np.ndarray, SelfCalibration]:
    """NDVI mean and predictive std ``(N, T)`` of sequences, as the UDF computes them.

    Args:
        model: the network.
        s1: ``(N, T, 2)`` linear VV, VH.
        ndvi: ``(N, T)`` kept NDVI.
        days: ``(N, T)`` days.
        std_scale: scale of the std where nothing was self-calibrated.
        batch_size: sequences per forward pass.
        self_calibration: calibrate on a sample of sequences' kept NDVI, as the UDF does on a cube
            (:mod:`udf.selfcal`).
        seed: seed of the calibration sample.
        calibrate_on: the sequences to calibrate on (default: these), e.g. the other pixels of a cube whose scored
            pixels have no NDVI left (S1 only).

    Returns:
        Mean, std and the calibration (``std_scale`` None when none was made; the std then uses ``std_scale``).
    """
    dev = next(model.parameters()).device

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

    cal = SelfCalibration()
    if self_calibration:
        c_s1, c_ndvi, c_days = ((s1, ndvi, days) if calibrate_on is None else
                                (calibrate_on.s1, calibrate_on.ndvi, calibrate_on.days))
        with_ndvi = np.flatnonzero(np.isfinite(c_ndvi).any(1))
        pick = np.sort(np.random.default_rng(seed).permutation(with_ndvi)[:1000])
        cal = self_calibrate(model, t(c_s1[pick, :, 0]), t(c_s1[pick, :, 1]), t(c_ndvi[pick]), t(c_days[pick]),
                             seed=seed)
    means, stds = [], []
    with torch.inference_mode():
        for a in range(0, s1.shape[0], batch_size):
            sl = slice(a, a + batch_size)
            m, sd = predict_series(model, t(s1[sl, :, 0]), t(s1[sl, :, 1]), t(ndvi[sl]), t(days[sl]), cal, std_scale)
            means.append(m.cpu().numpy())
            stds.append(sd.cpu().numpy())
    return np.concatenate(means), np.concatenate(stds), cal


def score_masked(model: FusionNet, masked: list[MaskedSet], std_scale: float = 1.0,
                 self_calibration: bool = False, calibrate_s1_only_on: SeriesSet | None = None) -> list[dict]:
    """Metrics of the model on every masked set, with the hidden residuals and stds (for calibration).

    ``self_calibration``: predict as the UDF does (:mod:`udf.selfcal`), e.g. for a trust report.
    ``calibrate_s1_only_on``: sequences that keep their NDVI (e.g. a cube's training blocks); a masked set without
    any kept NDVI (S1 only) is calibrated on them, as the UDF calibrates on a cube's other pixels.
    """
    out = []
    for m in masked:
        kept = m.kept_ndvi()
        other = calibrate_s1_only_on if not np.isfinite(kept).any() else None
        mean, std, cal = predict_set(model, m.series.s1, kept, m.series.days, std_scale,
                                     self_calibration=self_calibration, calibrate_on=other)
        truth = m.series.ndvi
        out.append({"site": m.site, "protocol": m.protocol, "source": m.series.source, "grid": m.series.grid,
                    "metrics": score(mean, truth, m.hidden), "pred": mean[m.hidden], "truth": truth[m.hidden],
                    "residual": (mean - truth)[m.hidden], "std": std[m.hidden], "calibration": cal.describe()})
    return out


def aggregate(results: list[dict], keys: tuple[str, ...] = ("site", "protocol")) -> dict:
    """Metrics of the pooled hidden observations per combination of ``keys`` (nested dicts in ``keys`` order)."""
    pooled: dict[tuple, list[dict]] = {}
    for r in results:
        pooled.setdefault(tuple(r[k] for k in keys), []).append(r)
    out: dict = {}
    for key, rs in pooled.items():
        pred = np.concatenate([r["pred"] for r in rs])
        truth = np.concatenate([r["truth"] for r in rs])
        node = out
        for k in key[:-1]:
            node = node.setdefault(k, {})
        node[key[-1]] = {**score(pred, truth, np.ones(pred.shape, bool)), **coverage(rs)}
    return out


def calibrate_std(results: list[dict]) -> float:
    """Scale such that 68.3 % of hidden residuals fall within ±1 predictive std (pooled, each site weighted equally).

    Sites with many sequences would otherwise set the scale alone; here each site's residuals are resampled to the
    same count before the quantile is taken.
    """
    by_site: dict[str, list[np.ndarray]] = {}
    for r in results:
        z = np.abs(r["residual"]) / r["std"]
        by_site.setdefault(r["site"], []).append(z[np.isfinite(z)])
    pooled = [np.concatenate(v) for v in by_site.values()]
    pooled = [z for z in pooled if z.size]
    if not pooled:
        return 1.0
    n = min(z.size for z in pooled)
    rng = np.random.default_rng(0)
    sample = np.concatenate([rng.choice(z, n, replace=z.size < n) for z in pooled])
    return float(np.quantile(sample, 0.683))


def coverage(results: list[dict], scale: float = 1.0) -> dict[str, float]:
    """Share of hidden residuals within ±1 and ±2 std (the std already scaled, times ``scale``)."""
    z = np.concatenate([np.abs(r["residual"]) / (r["std"] * scale) for r in results]) if results else np.zeros(0)
    z = z[np.isfinite(z)]
    if not z.size:
        return {"within_1std": float("nan"), "within_2std": float("nan")}
    return {"within_1std": float((z <= 1).mean()), "within_2std": float((z <= 2).mean())}
