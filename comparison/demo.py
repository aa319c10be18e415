"""The main job on the embedded sample: cube → (train) → P1–P3 on held-out blocks for every method → report.

Every learned method is trained on the training blocks only; the hidden values of each protocol are drawn once and
shared by every method.
"""

import json
import logging
import time
from pathlib import Path
from typing import Callable

from comparison.baselines import choose_whittaker_lambda
from comparison.cross_site import run_cross_site
from comparison.evaluate import evaluate
from comparison.methods import dl_method, linear_method, seed_mlp_method, whittaker_method
from comparison.plots import evaluation_figure
from comparison.protocols import make_protocols, spatial_block_split
from comparison.report import markdown_table, write_metrics, write_report
from comparison.seed_mlp import SeedMLP
from udf.cube_io import write_cube
from udf.fit import eval_cube, fit
from udf.inference import predict_cube
from udf.ingest import load_sample_cube
from udf.preprocess import times_to_days, to_db
from udf.training import TrainConfig
from udf.weights import load_checkpoint, save_checkpoint

_log = logging.getLogger(__name__)

__all__ = ["run_demo"]


def _model(acq, split, train: bool, minutes: float, seed: int, out: Path,  # type: ignore[no-untyped-def]
           progress: Callable[[str], None] | None):
    if not train:
        model, meta = load_checkpoint(None)
        if meta.get("split") != split.describe():
            raise ValueError(f"The shipped weights were trained on split {meta.get('split')}, not on the demo's "
                             f"{split.describe()}: their held-out blocks would not be held out. Retrain (drop --no-train).")
        return model, meta
    cfg = TrainConfig(max_minutes=minutes, seed=seed)
    model, meta = fit(acq, split, cfg, progress=(lambda e, r: progress(f"epoch {e}: val MAE {r['val_score']:.4f}"))
                      if progress else None)
    meta["training_data"]["source"] = "embedded WorldCereal sample 31UDS (per acquisition)"
    save_checkpoint(model, meta, out / "model.npz")
    return model, meta


def run_demo(out: str | Path, train: bool = True, minutes: float = 2.0, seed: int = 0,
             progress: Callable[[str], None] | None = None) -> dict:
    """Run the demo and write ``cube_10D.nc``, ``ndvi_fused.nc``, ``metrics.json``, ``report.md``, ``evaluation.png``.

    Args:
        out: output folder.
        train: train a model (else use the shipped weights, which were trained on the same training blocks).
        minutes: training budget.
        seed: seed of the split, the protocols and the training.
        progress: called with a short status text as the work advances.

    Returns:
        The metrics payload written to ``metrics.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    acq = load_sample_cube(period=None)
    cube = eval_cube(acq)
    write_cube(cube, out / "cube_10D.nc")
    split = spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=8, seed=seed)
    model, meta = _model(acq, split, train, minutes, seed, out, progress)
    ndvi, days = cube.sel(bands="NDVI").values, times_to_days(cube["t"].values)
    lam, lam_mae = choose_whittaker_lambda(ndvi, days, split.train, seed=seed)
    mlp = SeedMLP(seed=seed).fit(to_db(cube.sel(bands="VV").values), to_db(cube.sel(bands="VH").values), ndvi,
                                 split.train)
    methods = {"DL": dl_method(model, meta), "Linear": linear_method(), "Whittaker": whittaker_method(lam),
               "SeedMLP": seed_mlp_method(mlp)}
    protocols = make_protocols(ndvi, days, split.test, seed=seed + 2)
    metrics, preds = evaluate(cube, protocols, methods, progress=progress)
    fused = predict_cube(cube, model, meta, s1_units="linear", include_uncertainty=True, device="cpu")
    write_cube(fused, out / "ndvi_fused.nc")
    evaluation_figure(cube["t"].values, ndvi, {k: p.hidden for k, p in protocols.items()}, preds, metrics,
                      out / "evaluation.png")
    if progress is not None:
        progress("cross-site")
    cross = run_cross_site(model, meta, seed=seed)
    payload = {"data": "embedded WorldCereal sample 31UDS (Flanders), 10-day composites, 20 m",
               "split": split.describe(), "whittaker_lambda": lam, "whittaker_lambda_mae": lam_mae,
               "trained_here": train, "model": meta.get("model"), "std_scale": meta.get("std_scale"),
               "metrics": metrics, "cross_site": cross, "seconds_total": time.perf_counter() - t0}
    write_metrics(payload, out / "metrics.json")
    _write_demo_report(out, payload, metrics)
    _log.info("Demo finished in %.1f s; outputs in %s", payload["seconds_total"], out)
    return payload


def _write_demo_report(out: Path, payload: dict, metrics: dict) -> None:
    sp = payload["split"]
    intro = (f"Data: {payload['data']}. Spatial hold-out: blocks of {sp['block_px']} px, "
             f"{sp['train_px']} training / {sp['val_px']} validation / {sp['test_px']} test pixels "
             f"(buffer {sp['buffer_px']} px). All numbers are on the test blocks only. "
             f"Whittaker λ = {payload['whittaker_lambda']} (chosen on training pixels). "
             f"Model {'trained in this run' if payload['trained_here'] else 'from the shipped weights'}.")
    write_report(out / "report.md", "s1ndvi demo: gap-filling on held-out blocks", [
        ("Setup", intro),
        ("Accuracy and speed", markdown_table(metrics)),
        ("Figure", "![evaluation](evaluation.png)"),
        ("Cross-site: a site the model never saw",
         f"{payload['cross_site']['site']}. The model is applied as trained (monthly steps are outside its 5–16-day "
         f"training grids); Whittaker λ = {payload['cross_site']['whittaker_lambda']} chosen on this site's own "
         f"training blocks. Test blocks: {payload['cross_site']['split']['test_px']} px.\n\n"
         + markdown_table(payload["cross_site"]["metrics"])),
        ("Notes", "P1: 20 % of observations hidden at random; P2_60/P2_90: every observation inside a 60-/90-day "
                  "window hidden; P3: all NDVI hidden (S1 only). Linear interpolation and Whittaker cannot predict "
                  "without NDVI (P3: NaN, counted). The seed MLP ignores NDVI by design (see comparison/seed_mlp.py)."),
        ("Metadata", f"```json\n{json.dumps({k: payload[k] for k in ('model', 'std_scale')}, indent=1)}\n```"),
    ])
