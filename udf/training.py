"""Masked-objective training of :class:`udf.model.FusionNet` on real S1 + S2 acquisitions.

Each epoch composites the acquisitions onto several regular grids (5- to 16-day periods, shifted starts), so one
model serves every grid; each sequence then loses part of its NDVI (random points, a long contiguous gap, or all of
it) and the network learns to predict what was hidden under a Laplace negative log-likelihood (robust to residual
clouds in the labels). Early stopping watches held-out validation pixels, never the training loss.
"""

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from udf.compositing import composite_ndvi, composite_s1, regular_grid
from udf.masking import hide_all, hide_random, hide_window
from udf.model import FusionNet, ModelConfig
from udf.preprocess import FEATURES, pixel_features, times_to_days

_log = logging.getLogger(__name__)
_NDVI, _NDVI_VALID = FEATURES.index("ndvi"), FEATURES.index("ndvi_valid")
_NORMALISED = ("vv_db", "vh_db", "ratio_db", "vv_db_3x3", "vh_db_3x3")


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (stored in the checkpoint metadata)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """Architecture."""
    periods: tuple[int, ...] = (5, 8, 10, 12, 16)
    """Composite periods (days) of the training grids."""
    epochs: int = 60
    """Maximum number of epochs."""
    batch_size: int = 64
    """Sequences per optimisation step."""
    lr: float = 3e-3
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    patience: int = 10
    """Epochs without validation improvement before stopping."""
    min_steps: int = 12
    """Shortest random crop of a sequence (time steps)."""
    screen_dips: bool = True
    """Drop cloud-dip NDVI values (far below both neighbours) from the training targets (not from the inputs)."""
    max_minutes: float | None = None
    """Wall-clock budget; training stops (keeping the best epoch) when it runs out."""
    seed: int = 0
    """Seed of every random choice (weights, crops, masks)."""
    threads: int = 1
    """Torch intra-op threads while training (small batches gain nothing from more, and lose a lot on a busy CPU)."""

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return {**asdict(self), "model": self.model.to_dict(), "periods": list(self.periods)}


@dataclass
class SeriesSet:
    """Per-pixel sequences on one time grid: ``features`` ``(N, T, F)``, ``target`` ``(N, T)`` NDVI (NaN missing)."""

    features: np.ndarray
    target: np.ndarray
    days: np.ndarray


def screen_cloud_dips(ndvi: np.ndarray, days: np.ndarray, drop: float = 0.1, max_gap: float = 40.0) -> np.ndarray:
    """Mask NDVI values lower by more than ``drop`` than both nearest valid neighbours within ``max_gap`` days.

    Args:
        ndvi: ``(N, T)`` NDVI with NaN.
        days: ``(T,)`` days.
        drop: NDVI drop below both neighbours that flags a dip.
        max_gap: neighbours farther than this (days) do not count.

    Returns:
        ``(N, T)`` boolean mask of suspected cloud dips.
    """
    valid = np.isfinite(ndvi)
    dips = np.zeros_like(valid)
    for i in range(ndvi.shape[0]):
        idx = np.flatnonzero(valid[i])
        if idx.size < 3:
            continue
        v, d = ndvi[i, idx], days[idx]
        lower = (v[1:-1] < v[:-2] - drop) & (v[1:-1] < v[2:] - drop)
        close = (d[1:-1] - d[:-2] <= max_gap) & (d[2:] - d[1:-1] <= max_gap)
        dips[i, idx[1:-1][lower & close]] = True
    return dips


def make_series(s1: np.ndarray, s1_times: np.ndarray, ndvi: np.ndarray, ndvi_times: np.ndarray,
                pixels: np.ndarray, period: int, offset: int = 0) -> SeriesSet:
    """Composite acquisitions onto one grid and cut out the selected pixels.

    Args:
        s1: ``(T1, 2, Y, X)`` VV/VH linear power per acquisition.
        s1_times: ``(T1,)`` acquisition times.
        ndvi: ``(T2, Y, X)`` NDVI per S2 scene (NaN cloudy).
        ndvi_times: ``(T2,)`` scene times.
        pixels: ``(Y, X)`` boolean mask of the pixels to keep.
        period: composite length in days.
        offset: days by which the grid start is shifted.
    """
    start = np.datetime64(str(min(s1_times.min(), ndvi_times.min()))[:10], "D") + np.timedelta64(offset, "D")
    end = np.datetime64(str(max(s1_times.max(), ndvi_times.max()))[:10], "D") + np.timedelta64(1, "D")
    edges = regular_grid(start, end, period)
    s1c = composite_s1(s1, s1_times, edges)
    ndc = composite_ndvi(ndvi, ndvi_times, edges)
    days = times_to_days(edges[:-1])
    feats = pixel_features(s1c[:, 0], s1c[:, 1], ndc, days)
    flat = pixels.ravel()
    target = ndc.reshape(ndc.shape[0], -1).T[flat]
    return SeriesSet(features=feats[flat], target=target.astype(np.float32), days=days)


def _hide(valid: np.ndarray, days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one masking scenario per sequence: random points, a 30–120-day gap (+ points), or everything."""
    n = valid.shape[0]
    hidden = np.zeros_like(valid)
    u = np.asarray(rng.random(n))
    sets: dict[str, np.ndarray] = {"random": u < 0.3, "gap": (u >= 0.3) & (u < 0.75),
                                   "mixed": (u >= 0.75) & (u < 0.85), "all": u >= 0.85}
    if sets["random"].any():
        hidden[sets["random"]] = hide_random(valid[sets["random"]], float(rng.uniform(0.2, 0.6)), rng)
    for key, extra in (("gap", 0.0), ("mixed", 0.2)):
        sel = sets[key]
        if sel.any():
            gap = hide_window(valid[sel], days, float(rng.uniform(30, 120)), rng)
            hidden[sel] = gap | hide_random(valid[sel], extra, rng, at_least_one=False)
    hidden[sets["all"]] = hide_all(valid[sets["all"]])
    return hidden


def apply_hidden(features: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Copy of ``features`` ``(N, T, F)`` with the NDVI of ``hidden`` ``(N, T)`` steps removed."""
    out = features.copy()
    out[..., _NDVI][hidden] = 0.0
    out[..., _NDVI_VALID][hidden] = 0.0
    return out


def laplace_nll(mean: torch.Tensor, log_b: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean Laplace negative log-likelihood ``|y − μ|/b + log b`` over the weighted steps."""
    nll = (target - mean).abs() * torch.exp(-log_b) + log_b
    return (nll * weight).sum() / weight.sum().clamp(min=1.0)


def feature_stats(sets: list[SeriesSet]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each feature over valid S1 steps (only the dB features are normalised)."""
    mean, std = np.zeros(len(FEATURES), np.float32), np.ones(len(FEATURES), np.float32)
    valid_col = FEATURES.index("s1_valid")
    rows = np.concatenate([s.features[s.features[..., valid_col] > 0] for s in sets])
    for name in _NORMALISED:
        j = FEATURES.index(name)
        mean[j], std[j] = rows[:, j].mean(), max(rows[:, j].std(), 1e-3)
    return mean, std


def _batches(sets: list[SeriesSet], cfg: TrainConfig, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    order = [(k, i) for k, s in enumerate(sets) for i in range(s.features.shape[0])]
    rng.shuffle(order)
    by_set: dict[int, list[int]] = {}
    for k, i in order:
        by_set.setdefault(k, []).append(i)
    chunks = [(k, idx[j:j + cfg.batch_size]) for k, idx in by_set.items() for j in range(0, len(idx), cfg.batch_size)]
    rng.shuffle(chunks)
    for k, idx in chunks:
        s = sets[k]
        nt = s.features.shape[1]
        length = int(rng.integers(min(cfg.min_steps, nt), nt + 1))
        a = int(rng.integers(0, nt - length + 1))
        yield s.features[idx, a:a + length], s.target[idx, a:a + length], s.days[a:a + length]


def _train_step(model: FusionNet, opt: torch.optim.Optimizer, feats: np.ndarray, target: np.ndarray,
                days: np.ndarray, rng: np.random.Generator, screen: bool) -> float:
    valid = np.isfinite(target)
    hidden = _hide(valid, days, rng)
    labels = hidden & ~screen_cloud_dips(target, days) if screen else hidden
    x = torch.from_numpy(apply_hidden(feats, hidden))
    mean, log_b = model(x)
    y = torch.from_numpy(np.nan_to_num(target))
    loss = laplace_nll(mean, log_b, y, torch.from_numpy(labels.astype(np.float32)))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(loss.detach())


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads, restoring the previous setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train(train_sets: list[SeriesSet], val_score: Callable[[FusionNet], float], cfg: TrainConfig,
          progress: Callable[[int, dict], None] | None = None) -> tuple[FusionNet, list[dict]]:
    """Train a model; keep the weights of the epoch with the best validation score (lower is better).

    Args:
        train_sets: training sequences (one set per grid).
        val_score: scores a model on held-out pixels (e.g. mean MAE over the protocols).
        cfg: hyper-parameters.
        progress: called after each epoch with ``(epoch, record)``.

    Returns:
        The best model (eval mode) and the per-epoch history.
    """
    with torch_threads(cfg.threads):
        return _train(train_sets, val_score, cfg, progress)


def _train(train_sets: list[SeriesSet], val_score: Callable[[FusionNet], float], cfg: TrainConfig,
           progress: Callable[[int, dict], None] | None) -> tuple[FusionNet, list[dict]]:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = FusionNet(cfg.model)
    mean, std = feature_stats(train_sets)
    model.feature_mean.copy_(torch.from_numpy(mean))
    model.feature_std.copy_(torch.from_numpy(std))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    best, best_state, history, t0 = np.inf, None, [], time.monotonic()
    for epoch in range(cfg.epochs):
        model.train()
        losses = [_train_step(model, opt, f, y, d, rng, cfg.screen_dips) for f, y, d in _batches(train_sets, cfg, rng)]
        sched.step()
        model.eval()
        score = val_score(model)
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_score": score,
                  "minutes": (time.monotonic() - t0) / 60}
        history.append(record)
        if progress is not None:
            progress(epoch, record)
        _log.info("epoch %d train %.4f val %.4f", epoch, record["train_loss"], score)
        if score < best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
        elif epoch - int(np.argmin([h["val_score"] for h in history])) >= cfg.patience:
            _log.info("early stop at epoch %d (best %.4f)", epoch, best)
            break
        if cfg.max_minutes is not None and record["minutes"] >= cfg.max_minutes:
            _log.info("time budget of %.1f min reached at epoch %d", cfg.max_minutes, epoch)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), history
