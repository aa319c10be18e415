"""``s1ndvi adapt``: fine-tune the pretrained model on the user's own cube, and say whether to trust it there.

The cube's own cloud-free S2 is the supervision (self-supervised like pretraining: observations are hidden and
predicted; its NaN NDVI stays unknown). The cube is cut into spatial blocks: training blocks adapt the model,
validation blocks choose the epoch kept (the whole budget of optimisation steps is used: seeded, so the same
weights on any machine; a wall-clock cap only stops it early, with a warning) and recalibrate NDVI_STD on the cube's
own held-out residuals, test blocks are scored once at the end for the **trust report**: MAE/R² of the adapted
model, the base (pretrained) model, linear interpolation and Whittaker (λ chosen on the training blocks) under P1,
P2_60, P2_90 and P3, and the std coverage. Both models predict as the UDF does (self-calibrated; under P3 on the
training blocks' NDVI, as the UDF calibrates on a cube's other pixels when the scored ones have none).
"""

import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import xarray as xr

from udf.evaluation.baselines import choose_whittaker_lambda, linear_interpolation, whittaker
from udf.evaluation.metrics import score
from udf.evaluation.protocols import PROTOCOLS, SpatialSplit, spatial_block_split
from udf.evaluation.validation import aggregate, coverage, mask_sets, score_masked
from udf.model import FusionNet
from udf.training.budget import ADAPT_STEPS_PER_EPOCH, DEFAULT_ADAPT_STEPS
from udf.training.fit import fit, split_series
from udf.training.loop import in_site_config

_log = logging.getLogger(__name__)

__all__ = ["DEFAULT_ADAPT_STEPS", "AdaptOptions", "adapt", "adapt_split", "format_trust_report", "trust_report"]


@dataclass(frozen=True)
class AdaptOptions:
    """How ``adapt`` fine-tunes."""

    steps: int = DEFAULT_ADAPT_STEPS
    """Optimisation steps of the fine-tuning (the best validation epoch is kept). A number of steps, not a time, so
    that the adapted weights are the same on any machine, however loaded (CPU vs GPU: within float tolerance)."""
    minutes: float | None = None
    """Wall-clock cap (None: none). When it runs out before ``steps``, training stops with a warning and the
    checkpoint records it (``adapt.cut_by_time_cap``): the result then depends on the machine's speed and load."""
    epochs: int = 5000
    """Most epochs, and the length of the cosine learning-rate schedule (so over the default steps the rate stays
    near ``lr``)."""
    steps_per_epoch: int = ADAPT_STEPS_PER_EPOCH
    """Optimisation steps per epoch (between two validations)."""
    lr: float = 3e-3
    """Learning rate."""
    patience: int | None = None
    """Epochs without validation improvement before stopping early; None (default) uses the whole budget. The
    validation error of a small cube can stall for a hundred epochs and then fall again, as the day-of-year
    inputs start to count (the embedded sample: best epoch 361 of 451 in 4 minutes; stopping after 40 stalled epochs
    ended at epoch 51 with P2_60 0.102 on the test blocks instead of 0.067)."""
    block: int | None = None
    """Spatial block edge (pixels); default from the cube size (at least 8, about 8 blocks across)."""
    seed: int = 0
    """Seed of the split, the masks and the training."""
    threads: int = 1
    """Torch intra-op threads. One: on the shared 2-core test machine at load ~7, 240 steps on the embedded sample
    took 15.7 s with one thread and 126 s with two (threads wait for each other at every small op); the weights
    differ between thread counts at float level only (4e-7 after 160 steps)."""
    device: str = "cpu"
    """Torch device of the fine-tuning."""


def adapt_split(shape: tuple[int, int], block: int | None = None, seed: int = 0) -> SpatialSplit:
    """The cube's train / validation / test blocks (buffered): blocks of ``block`` px, default ~1/8 of the cube."""
    ny, nx = shape
    edge = block or max(8, min(ny, nx) // 8)
    return spatial_block_split((ny, nx), block=edge, seed=seed)


def adapt(cube: xr.DataArray, base: FusionNet, base_meta: dict, opts: AdaptOptions = AdaptOptions(),
          split: SpatialSplit | None = None, score_test: bool = True,
          progress: Callable[[int, dict], None] | None = None) -> tuple[FusionNet, dict]:
    """Fine-tune ``base`` on the cube's training blocks; recalibrate the std; report on its test blocks.

    Args:
        cube: the user's model cube ``(t, bands[VV, VH, NDVI], y, x)`` (any grid, any accepted S1 encoding).
        base: the pretrained model (left unchanged; a copy is adapted).
        base_meta: its checkpoint metadata.
        opts: budget and split.
        split: spatial split (default :func:`adapt_split`).
        score_test: write the trust report (False when the caller scores the test blocks itself, e.g. ``compare``).
        progress: per-epoch callback.

    Returns:
        The adapted model and its metadata (with ``trust_report`` when ``score_test``).
    """
    if opts.steps < 1:
        raise ValueError(f"adapt steps {opts.steps}: expected a positive number of optimisation steps.")
    if opts.minutes is not None and opts.minutes <= 0:
        raise ValueError(f"adapt time cap {opts.minutes} min: expected a positive number of minutes (or no cap).")
    split = split or adapt_split((cube.sizes["y"], cube.sizes["x"]), opts.block, opts.seed)
    start = base.with_calendar()  # the base's exact twin, plus zero weights on the day of year
    cfg = in_site_config(model=start.config, epochs=opts.epochs, steps_per_epoch=opts.steps_per_epoch, lr=opts.lr,
                         max_steps=opts.steps, max_minutes=opts.minutes, seed=opts.seed, threads=opts.threads,
                         patience=opts.epochs if opts.patience is None else opts.patience,
                         device=opts.device)
    model, meta = fit(cube, split, cfg, init=start, score_test=False, progress=progress)
    meta["adapt"] = budget_record(meta["history"], opts)
    meta["adapted_from"] = {k: base_meta.get(k) for k in ("training_data", "std_scale", "loso_summary")
                            if k in base_meta}
    meta["training_data"]["kind"] = "adapted on the user's cube"
    if score_test:
        meta["trust_report"] = trust_report(cube, split, model, meta, base, base_meta, opts.seed)
    return model, meta


def budget_record(history: list[dict], opts: AdaptOptions) -> dict:
    """What the fine-tuning spent: steps asked and run, epochs, minutes, and whether the time cap cut it short."""
    last = history[-1] if history else {}
    return {"steps": opts.steps, "steps_run": int(last.get("steps", 0)), "epochs_run": max(0, len(history) - 1),
            "steps_per_epoch": opts.steps_per_epoch, "time_cap_minutes": opts.minutes,
            "minutes": float(last.get("minutes", 0.0)), "cut_by_time_cap": last.get("stopped") == "time cap",
            "stopped": last.get("stopped", "budget")}


def trust_report(cube: xr.DataArray, split: SpatialSplit, model: FusionNet, meta: dict, base: FusionNet,
                 base_meta: dict, seed: int = 0, protocols: tuple[str, ...] = PROTOCOLS) -> dict:
    """Adapted vs base model vs linear vs Whittaker on the cube's test blocks, same hidden values for all."""
    parts = split_series(cube, split)
    test = parts["test"]
    masked = mask_sets([test], protocols, seed=seed + 2, max_sequences=4000)
    out: dict = {"test_pixels": test.n, "split": split.describe(), "methods": {}}
    if "ndvi_warning" in cube.attrs:
        out["ndvi_warning"] = str(cube.attrs["ndvi_warning"])
    for name, net, scale in (("adapted", model, meta["std_scale"]), ("base", base, base_meta.get("std_scale", 1.0))):
        res = score_masked(net, masked, scale, self_calibration=True, calibrate_s1_only_on=parts["train"])
        out["methods"][name] = aggregate(res, ("protocol",))
        out[f"{name}_coverage"] = coverage(res)
    pick = np.random.default_rng(seed).permutation(parts["train"].n)[:800]
    ndvi_train = parts["train"].ndvi[pick].T[:, None, :]
    lam, _ = choose_whittaker_lambda(ndvi_train, parts["train"].days[0], np.ones((1, pick.size), bool), seed=seed)
    out["whittaker_lambda"] = lam
    for name, fn in (("linear", linear_interpolation), ("whittaker", lambda n, d: whittaker(n, d, lam))):
        out["methods"][name] = {m.protocol: score(fn(m.kept_ndvi().T, m.series.days[0]).T, m.series.ndvi, m.hidden)
                                for m in masked}
    out["verdict"] = _verdict(out)
    return out


def _verdict(report: dict) -> str:
    m = report["methods"]

    def mae(method: str, protocol: str) -> float:
        return float(m.get(method, {}).get(protocol, {}).get("mae", math.nan))

    gap = [p for p in ("P2_60", "P2_90") if p in m.get("adapted", {})]
    better = all(mae("adapted", p) <= min(mae("linear", p), mae("whittaker", p)) for p in gap)
    p3 = m.get("adapted", {}).get("P3", {}).get("r2", math.nan)
    cov = report.get("adapted_coverage", {}).get("within_1std", math.nan)
    parts = [("gap filling not scored (no P2_60/P2_90 window fits the test blocks' series)" if not gap else
              "gap filling beats interpolation on held-out blocks" if better else
              "gap filling does NOT beat interpolation on held-out blocks: prefer the interpolation there"),
             (f"S1-only R² {p3:.2f}: " + ("usable without any S2" if p3 >= 0.5 else "weak without any S2")),
             f"±1σ covers {100 * cov:.0f} % of held-out errors (68 % expected)"]
    return "; ".join(parts) + "."


def format_trust_report(report: dict) -> str:
    """The trust report as a plain-text table (what ``s1ndvi adapt`` prints)."""
    methods = list(report["methods"])
    protocols = sorted({p for v in report["methods"].values() for p in v}, key=lambda p: PROTOCOLS.index(p))
    lines = [f"Trust report on {report['test_pixels']} held-out pixels (test blocks; MAE / R²):",
             f"{'protocol':<8}" + "".join(f"{m:>18}" for m in methods)]
    for p in protocols:
        cells = []
        for m in methods:
            r = report["methods"][m].get(p, {})
            cells.append(f"{r.get('mae', math.nan):8.3f} / {r.get('r2', math.nan):5.2f}" if r else f"{'no prediction':>16}")
        lines.append(f"{p:<8}" + "".join(f"{c:>18}" for c in cells))
    for name in ("adapted", "base"):
        c = report.get(f"{name}_coverage", {})
        lines.append(f"{name} std coverage: ±1σ {100 * c.get('within_1std', math.nan):.0f} %, "
                     f"±2σ {100 * c.get('within_2std', math.nan):.0f} %")
    lines.append("Verdict: " + report["verdict"])
    if "ndvi_warning" in report:
        lines.append("Warning: " + report["ndvi_warning"])
    return "\n".join(lines)
