"""Masked-objective training of :class:`udf.model.FusionNet` on real S1 + S2 sequences from one or many sites.

Each step draws a site (all sites equally often, whatever their size), one of its series sets (its native grid or a
re-composited one), a batch of sequences and a random time window; it perturbs the S1 the way sites differ (a
calibration offset per sequence — σ⁰ vs γ⁰, sensors, processing — and, on per-acquisition series, an offset per
simulated orbit and dropped acquisitions), hides part of the NDVI (random points, a long contiguous gap, or all of
it) and learns to predict what was hidden under a Laplace negative log-likelihood (robust to residual clouds in the
labels). Kept observations are scored with a small weight, so the output next to them honours them. Early stopping
watches held-out validation sequences, never the training loss.
"""

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterator

import numpy as np
import torch

from udf.features import FEATURES, NORMALISED, feature_names, series_features
from udf.masking import hide_all, hide_random, hide_window
from udf.model import FusionNet, ModelConfig
from udf.training.corpus.series import SeriesSet

_log = logging.getLogger(__name__)

__all__ = ["IN_SITE_AUGMENT", "Augment", "TrainConfig", "feature_stats", "hide_for_training", "in_site_config",
           "laplace_nll", "pretrain_config", "screen_cloud_dips", "torch_threads", "train"]


@dataclass(frozen=True)
class Augment:
    """How S1 is perturbed in training (dB); all zero disables augmentation."""

    offset_db: float = 2.0
    """Half-width of a uniform offset added to VV and VH of a whole sequence (calibration, σ⁰ vs γ⁰)."""
    vh_offset_db: float = 0.75
    """Half-width of an extra offset on VH only."""
    orbit_prob: float = 0.5
    """Probability that a per-acquisition sequence is split into two simulated orbits."""
    orbit_offset_db: float = 1.5
    """Half-width of the offset of the second simulated orbit."""
    drop_s1: float = 0.3
    """Largest share of S1 acquisitions dropped from a per-acquisition sequence."""
    swap_s1: float = 0.2
    """Share of sequences whose S1 is replaced by another sequence's (NDVI kept): the model must check S1 against
    the kept NDVI before trusting it, as on a site where S1 relates to NDVI differently."""
    interleave_prob: float = 0.25
    """Probability that a composite sequence is split into S1-only and S2-only steps a few days apart, as in a
    per-acquisition cube where radar and optical dates never coincide."""


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (stored in the checkpoint metadata)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """Architecture."""
    epochs: int = 30
    """Maximum number of epochs (pretraining longer fits the training sites better and new sites worse)."""
    steps_per_epoch: int = 200
    """Optimisation steps per epoch (batches are sampled, not passed through in order)."""
    batch_size: int = 64
    """Sequences per optimisation step."""
    lr: float = 3e-3
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    patience: int = 8
    """Epochs without validation improvement before stopping."""
    min_steps: int = 8
    """Shortest random crop of a sequence (time steps)."""
    kept_weight: float = 0.1
    """Weight of kept observations in the loss (hidden ones weigh 1)."""
    shrink: float = 0.0
    """Weight of an L1 penalty on the correction to the interpolation (NDVI units): corrections that do not pay
    for themselves on the training sites are pulled to zero, so an unfamiliar site gets the interpolation."""
    screen_dips: bool = True
    """Drop cloud-dip NDVI values (far below both neighbours) from the training targets (not from the inputs)."""
    augment: Augment = field(default_factory=Augment)
    """S1 perturbations."""
    max_steps: int | None = None
    """Total optimisation steps (None: ``epochs × steps_per_epoch``); the last epoch is cut to fit. A step budget
    gives the same weights on any machine, however loaded."""
    max_minutes: float | None = None
    """Wall-clock cap; training stops (keeping the best epoch) when it runs out, with a warning when it cuts the
    epochs or steps short (the result then depends on the machine's speed and load)."""
    seed: int = 0
    """Seed of every random choice (weights, batches, masks, perturbations)."""
    threads: int = 1
    """Torch intra-op threads while training (small batches gain little from more)."""
    device: str = "cpu"
    """Torch device of the training (``cpu``, ``cuda``)."""

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return {**asdict(self), "model": self.model.to_dict()}


def pretrain_config(seed: int = 0, epochs: int | None = None, steps: int | None = None,
                    hidden: int | None = None) -> TrainConfig:
    """The pretraining :class:`TrainConfig` with the command line's overrides (None keeps the default)."""
    cfg = TrainConfig(seed=seed)
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    if steps is not None:
        cfg = replace(cfg, steps_per_epoch=steps)
    if hidden is not None:
        cfg = replace(cfg, model=ModelConfig(hidden=hidden))
    return cfg


IN_SITE_AUGMENT = Augment(offset_db=0.5, vh_offset_db=0.25, orbit_prob=0.0, drop_s1=0.1, swap_s1=0.0,
                          interleave_prob=0.0)
"""Perturbations when training on the site the model will serve (``train``, ``adapt``): its S1 is what it is."""


def in_site_config(**kwargs: object) -> TrainConfig:
    """A :class:`TrainConfig` for training on the user's own cube: no S1 swap, no shrinkage, mild augmentation."""
    return TrainConfig(**{"augment": IN_SITE_AUGMENT, "shrink": 0.0, **kwargs})  # type: ignore[arg-type]


def screen_cloud_dips(ndvi: np.ndarray, days: np.ndarray, drop: float = 0.1, max_gap: float = 40.0) -> np.ndarray:
    """Mask NDVI values lower by more than ``drop`` than both nearest valid neighbours within ``max_gap`` days.

    Args:
        ndvi: ``(N, T)`` NDVI with NaN.
        days: ``(N, T)`` or ``(T,)`` days.
        drop: NDVI drop below both neighbours that flags a dip.
        max_gap: neighbours farther than this (days) do not count.

    Returns:
        ``(N, T)`` boolean mask of suspected cloud dips.
    """
    days = np.broadcast_to(days, ndvi.shape)
    valid = np.isfinite(ndvi)
    n, t = ndvi.shape
    idx = np.broadcast_to(np.arange(t), (n, t))
    prev = np.maximum.accumulate(np.where(valid, idx, -1), axis=1)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(valid, idx, t), 1), axis=1), 1)
    prev = np.concatenate([np.full((n, 1), -1), prev[:, :-1]], axis=1)  # strictly before
    nxt = np.concatenate([nxt[:, 1:], np.full((n, 1), t)], axis=1)  # strictly after
    ok = valid & (prev >= 0) & (nxt < t)
    pc, nc = np.clip(prev, 0, t - 1), np.clip(nxt, 0, t - 1)
    v, vp, vn = ndvi, np.take_along_axis(ndvi, pc, 1), np.take_along_axis(ndvi, nc, 1)
    close = (days - np.take_along_axis(days, pc, 1) <= max_gap) & (np.take_along_axis(days, nc, 1) - days <= max_gap)
    with np.errstate(invalid="ignore"):
        return ok & close & (v < vp - drop) & (v < vn - drop)


def hide_for_training(valid: np.ndarray, days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one masking scenario per sequence: random points, a 30–180-day gap (+ points), or everything."""
    n = valid.shape[0]
    hidden = np.zeros_like(valid)
    u = np.asarray(rng.random(n))
    sets = {"random": u < 0.3, "gap": (u >= 0.3) & (u < 0.75), "mixed": (u >= 0.75) & (u < 0.85), "all": u >= 0.85}
    if sets["random"].any():
        hidden[sets["random"]] = hide_random(valid[sets["random"]], float(rng.uniform(0.15, 0.6)), rng)
    days = np.broadcast_to(days, valid.shape)
    for key, extra in (("gap", 0.0), ("mixed", 0.2)):
        sel = sets[key]
        if sel.any():
            gap = hide_window(valid[sel], days[sel], float(rng.uniform(30, 180)), rng)
            hidden[sel] = gap | hide_random(valid[sel], extra, rng, at_least_one=False)
    hidden[sets["all"]] = hide_all(valid[sets["all"]])
    return hidden


def laplace_nll(mean: torch.Tensor, log_b: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean Laplace negative log-likelihood ``|y − μ|/b + log b`` over the weighted steps."""
    nll = (target - mean).abs() * torch.exp(-log_b) + log_b
    return (nll * weight).sum() / weight.sum().clamp(min=1.0)


def feature_stats(sets: list[SeriesSet], limit: int = 4000, seed: int = 0,
                  calendar: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the :data:`~udf.features.NORMALISED` features over valid S1 steps (others: 0 and 1).

    Half of the NDVI is hidden at random, so that the features relative to kept NDVI take typical values.
    """
    names = feature_names(calendar)
    mean, std = np.zeros(len(names), np.float32), np.ones(len(names), np.float32)
    rng = np.random.default_rng(seed)
    rows = []
    for s in sets:
        pick = rng.permutation(s.n)[:limit]
        kept = np.where(rng.random(s.ndvi[pick].shape) < 0.5, np.float32(np.nan), s.ndvi[pick])
        feats = series_features(torch.from_numpy(s.s1[pick, :, 0]), torch.from_numpy(s.s1[pick, :, 1]),
                                torch.from_numpy(kept), torch.from_numpy(s.days[pick]), calendar)
        x = feats.x.numpy()
        rows.append(x[x[..., FEATURES.index("s1_valid")] > 0])
    allrows = np.concatenate(rows)
    for name in NORMALISED:
        j = FEATURES.index(name)
        mean[j], std[j] = allrows[:, j].mean(), max(allrows[:, j].std(), 1e-3)
    return mean, std


def _perturb_s1(s1: np.ndarray, acquisition: bool, aug: Augment, rng: np.random.Generator) -> np.ndarray:
    """Per-sequence calibration offsets, and simulated orbits / dropped acquisitions on per-acquisition series."""
    n, t, _ = s1.shape
    db = np.zeros((n, t, 2))
    db += rng.uniform(-aug.offset_db, aug.offset_db, (n, 1, 1))
    db[..., 1] += rng.uniform(-aug.vh_offset_db, aug.vh_offset_db, (n, 1))
    out = s1 * (10.0 ** (db / 10.0)).astype(np.float32)
    if acquisition:
        split = (rng.random((n, 1)) < aug.orbit_prob) & (rng.random((n, t)) < 0.5)
        out = out * np.where(split, 10.0 ** (rng.uniform(-aug.orbit_offset_db, aug.orbit_offset_db, (n, 1)) / 10.0),
                             1.0)[..., None].astype(np.float32)
        drop = rng.random((n, t)) < rng.uniform(0, aug.drop_s1, (n, 1))
        out = np.where(drop[..., None], np.float32(np.nan), out)
    return out.astype(np.float32)


def _interleave(s1: np.ndarray, ndvi: np.ndarray, days: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``T`` composite steps → ``2T`` steps: S1 at the step's day, NDVI 1–5 days later on its own step."""
    n, t = ndvi.shape
    shift = rng.uniform(1.0, 5.0, (n, 1))
    step = np.diff(days, axis=1)
    shift = np.minimum(shift, 0.5 * np.concatenate([step, step[:, -1:]], axis=1))
    out_days = np.stack([days, days + shift], axis=2).reshape(n, 2 * t)
    out_s1 = np.full((n, 2 * t, 2), np.nan, dtype=np.float32)
    out_s1[:, 0::2] = s1
    out_nd = np.full((n, 2 * t), np.nan, dtype=np.float32)
    out_nd[:, 1::2] = ndvi
    return out_s1, out_nd, out_days


def _draw(pool: dict[str, list[SeriesSet]], cfg: TrainConfig,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """One batch: ``s1 (B, L, 2)``, ``ndvi (B, L)``, ``days (B, L)`` and whether it is per acquisition.

    A site is drawn uniformly; within it, its per-acquisition set (if any) half of the time, else any set.
    """
    sites = sorted(pool)
    sets = pool[sites[int(rng.integers(len(sites)))]]
    acq = [s for s in sets if s.grid == "acquisition"]
    s = acq[0] if acq and rng.random() < 0.5 else sets[int(rng.integers(len(sets)))]
    idx = rng.integers(0, s.n, cfg.batch_size)
    length = int(rng.integers(min(cfg.min_steps, s.steps), s.steps + 1))
    a = int(rng.integers(0, s.steps - length + 1))
    w = slice(a, a + length)
    s1, ndvi, days = s.s1[idx, w], s.ndvi[idx, w], s.days[idx, w]
    if s.grid != "acquisition" and rng.random() < cfg.augment.interleave_prob:
        return (*_interleave(s1, ndvi, days, rng), True)
    return s1, ndvi, days, s.grid == "acquisition"


def _train_step(model: FusionNet, opt: torch.optim.Optimizer, batch: tuple, cfg: TrainConfig,
                rng: np.random.Generator) -> float:
    s1, ndvi, days, acquisition = batch
    s1 = _perturb_s1(s1, acquisition, cfg.augment, rng)
    if cfg.augment.swap_s1 > 0:
        swap = np.asarray(rng.random(s1.shape[0]) < cfg.augment.swap_s1)
        s1 = s1.copy()
        s1[swap] = s1[rng.permutation(s1.shape[0])[: int(swap.sum())]]
    valid = np.isfinite(ndvi)
    hidden = hide_for_training(valid, days, rng)
    targets = hidden & ~screen_cloud_dips(ndvi, days) if cfg.screen_dips else hidden
    weight = targets.astype(np.float32) + cfg.kept_weight * (valid & ~hidden)
    dev = torch.device(cfg.device)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

    feats = series_features(t(s1[..., 0]), t(s1[..., 1]), t(np.where(hidden, np.float32(np.nan), ndvi)), t(days),
                            model.config.calendar)
    mean, log_b = model(feats.x, feats.base)
    w = t(weight)
    loss = laplace_nll(mean, log_b, t(np.nan_to_num(ndvi)), w)
    if cfg.shrink > 0:
        has = feats.x[..., FEATURES.index("has_ndvi")]
        loss = loss + cfg.shrink * ((mean - feats.base).abs() * has * w).sum() / w.sum().clamp(min=1.0)
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


def train(pool: dict[str, list[SeriesSet]], val_score: Callable[[FusionNet], float], cfg: TrainConfig,
          init: FusionNet | None = None, progress: Callable[[int, dict], None] | None = None
          ) -> tuple[FusionNet, list[dict]]:
    """Train a model; keep the weights of the epoch with the best validation score (lower is better).

    Args:
        pool: site → training series sets (sites are drawn equally often).
        val_score: scores a model on held-out sequences (e.g. mean MAE over protocols and sites).
        cfg: hyper-parameters.
        init: a model to start from (fine-tuning; its normalisation statistics are kept), or None (fresh weights,
            statistics from ``pool``).
        progress: called after each epoch with ``(epoch, record)``.

    Returns:
        The best model (eval mode) and the per-epoch history (epoch 0 is the starting model when ``init`` is given).
    """
    pool = {k: [s for s in v if s.n] for k, v in pool.items()}
    pool = {k: v for k, v in pool.items() if v}
    if not pool:
        raise ValueError("No training sequences: every site of the pool is empty.")
    with torch_threads(cfg.threads):
        return _train(pool, val_score, cfg, init, progress)


def _fresh_model(pool: dict[str, list[SeriesSet]], cfg: TrainConfig) -> FusionNet:
    model = FusionNet(cfg.model)
    mean, std = feature_stats([s for sets in pool.values() for s in sets], seed=cfg.seed, calendar=cfg.model.calendar)
    model.feature_mean.copy_(torch.from_numpy(mean))
    model.feature_std.copy_(torch.from_numpy(std))
    return model


def _train(pool: dict[str, list[SeriesSet]], val_score: Callable[[FusionNet], float], cfg: TrainConfig,
           init: FusionNet | None, progress: Callable[[int, dict], None] | None) -> tuple[FusionNet, list[dict]]:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = (_fresh_model(pool, cfg) if init is None else init).to(torch.device(cfg.device))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    t0 = time.monotonic()
    best, best_state, history = np.inf, None, []
    if init is not None:
        model.eval()
        best, best_state = val_score(model), {k: v.clone() for k, v in model.state_dict().items()}
        history.append({"epoch": 0, "train_loss": float("nan"), "val_score": best, "minutes": 0.0})
    done, first = 0, len(history)
    for epoch in range(first, first + cfg.epochs):
        n_steps = cfg.steps_per_epoch if cfg.max_steps is None else min(cfg.steps_per_epoch, cfg.max_steps - done)
        model.train()
        losses = [_train_step(model, opt, _draw(pool, cfg, rng), cfg, rng) for _ in range(n_steps)]
        done += n_steps
        sched.step()
        model.eval()
        score = val_score(model)
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_score": score,
                  "minutes": (time.monotonic() - t0) / 60, "steps": done}
        history.append(record)
        if progress is not None:
            progress(epoch, record)
        _log.info("epoch %d train %.4f val %.4f (%.1f min)", epoch, record["train_loss"], score, record["minutes"])
        finished = epoch == first + cfg.epochs - 1 or (cfg.max_steps is not None and done >= cfg.max_steps)
        if score < best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
        elif epoch - int(np.argmin([h["val_score"] for h in history])) >= cfg.patience:
            _log.info("early stop at epoch %d (best %.4f)", epoch, best)
            record["stopped"] = "early stop"
            break
        if finished:
            record["stopped"] = "budget"
            break
        if cfg.max_minutes is not None and record["minutes"] >= cfg.max_minutes:
            _log.warning("The time cap of %g min cut training short at epoch %d (%d of %d steps): the result depends "
                         "on this machine's speed and load; raise the cap (or remove it) to train the whole budget.",
                         cfg.max_minutes, epoch, done, cfg.max_steps or cfg.epochs * cfg.steps_per_epoch)
            record["stopped"] = "time cap"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), history
