"""The main job on the embedded sample: the whole story in one command, in a few minutes on a laptop.

1. Build the 10-day model cube of the embedded WorldCereal patch (Flanders, 2017-18); cut it into spatial blocks.
2. **Zero-shot**: the model pretrained on every corpus site *except this one* (a leave-one-site-out model shipped
   for the demo: what a user on a new region gets before adapting). **Adapted**: that model fine-tuned here with
   ``s1ndvi adapt`` on the training blocks (the test pixels' NDVI removed from its cube).
3. Draw each protocol's hidden observations once; run the adapted model through the local openEO backend (a process
   graph sent with the stock client) when the backend extra is installed, else through the UDF directly; the
   zero-shot model, MOGPR on the same held-out pixels and the baselines; score them all on the same hidden values.
4. The FuseTS fields (MOGPR vs CropSAR vs Whittaker), phenology of every method's series, and the
   leave-one-site-out table stored in the shipped weights (what to expect on a site the model never saw).
5. Write ``metrics.json``, ``report.md``, figures and the gap-filled cube ``ndvi_fused.nc``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import xarray as xr

from comparison.compare.core import CompareOptions, masked_cubes, plan, run_comparison
from comparison.compare.field_case import FIELDS, run_field_case
from comparison.compare.methods import Method, dl_method
from comparison.compare.report import site_figures, write_outputs
from comparison.compare.via_backend import (
    LocalBackendRun,
    backend_available,
    backend_dl_method,
    cube_key,
    fuse_graph,
    udf_context,
)
from comparison.errors import OptionalDependencyMissing
from comparison.loso.report import LABELS
from comparison.report import markdown_table
from udf.evaluation.protocols import SpatialSplit, spatial_block_split
from udf.inference import predict_cube
from udf.ingest.base import load_sample_cube
from udf.ingest.cube_io import write_cube
from udf.model import FusionNet
from udf.training.adapt import AdaptOptions, adapt
from udf.training.budget import DEMO_ADAPT_STEPS, describe_budget
from udf.training.fit import eval_cube
from udf.weights import DEMO_ZERO_SHOT_NAME, load_checkpoint, save_checkpoint

_log = logging.getLogger(__name__)

__all__ = ["run_demo"]

Step = Optional[Callable[[str], None]]
Pixels = Optional[Callable[[int, int], None]]


def _models(cube: xr.DataArray, split: SpatialSplit, adapt_steps: int, adapt_minutes: Optional[float], seed: int,
            out: Path, progress: Step) -> tuple[dict[str, tuple[FusionNet, dict, Optional[Path]]], dict[str, str]]:
    """``{row: (model, meta, weights path)}`` and each row's provenance sentence."""
    zero, zero_meta = load_checkpoint(Path(__file__).resolve().parents[1] / "udf" / "data" / DEMO_ZERO_SHOT_NAME)
    held = zero_meta.get("training_data", {}).get("held_out_sites", [])
    models: dict[str, tuple[FusionNet, dict, Optional[Path]]] = {"DL zero-shot": (zero, zero_meta, None)}
    prov = {"DL zero-shot": f"pretrained on {', '.join(zero_meta['training_data']['sites'])} — this site "
                            f"({', '.join(held)}) never seen; self-calibrated on the cube's kept NDVI"}
    if adapt_steps > 0:
        blind = cube.copy(data=cube.values.copy())
        blind.loc[{"bands": "NDVI"}] = np.where(split.test[None], np.nan, cube.sel(bands="NDVI").values)
        model, meta = adapt(blind, zero, zero_meta, AdaptOptions(steps=adapt_steps, minutes=adapt_minutes, seed=seed),
                            split=split,
                            score_test=False,
                            progress=(lambda e, r: progress(f"adapt epoch {e}: val MAE {r['val_score']:.4f}"))
                            if progress else None)
        meta["training_data"]["source"] = "embedded WorldCereal sample 31UDS, training blocks (s1ndvi adapt)"
        path = save_checkpoint(model, meta, out / "model_adapted.npz")
        models["DL adapted"] = (model, meta, path)
        prov["DL adapted"] = (f"the zero-shot model adapted here ({describe_budget(meta['adapt'])}) "
                              "on the training blocks; std recalibrated on the "
                              f"validation blocks; the test pixels' NDVI was removed from its cube")
    return models, prov


def _use_backend(via: str) -> bool:
    if via == "udf":
        return False
    if backend_available():
        return True
    if via == "backend":
        raise OptionalDependencyMissing('--via backend needs the local backend: pip install -e ".[backend]"')
    _log.warning("Local backend not installed (pip install -e \".[backend]\"): calling the UDF directly")
    return False


def _evaluate_sample(cube, split, opts, models, out: Path, via_backend: bool,  # type: ignore[no-untyped-def]
                     progress: Step, pixel_progress: Pixels) -> tuple[dict, dict, dict]:
    """Protocols on the sample; the last DL row (adapted) through the backend and checked against the UDF."""
    planned = plan(cube, opts, split)
    dl: dict[str, Method] = {name: dl_method(m, meta) for name, (m, meta, _) in models.items()}
    lead = list(models)[-1]
    model, meta, weights = models[lead]
    if not via_backend:
        payload, preds, prots = run_comparison(cube, opts, dl=dl, split=split, planned=planned, progress=progress,
                                               pixel_progress=pixel_progress)
        write_cube(predict_cube(cube, model, meta, s1_units="linear", include_uncertainty=True, device="cpu"),
                   out / "ndvi_fused.nc")
        payload["dl_via"] = "UDF called directly (udf.inference.predict_cube)"
        return payload, preds, prots
    masked = masked_cubes(cube, planned[1])
    context = udf_context(weights)
    with LocalBackendRun(list(masked.values()) + [cube], out / "backend") as run:
        # The product first: the whole cube gap-filled (also warms the server up before anything is timed).
        fuse_graph(run.connection, cube_key(cube), context).download(str(out / "ndvi_fused.nc"), format="netCDF")
        dl[lead] = backend_dl_method(run, weights)
        payload, preds, prots = run_comparison(cube, opts, dl=dl, split=split, planned=planned, progress=progress,
                                               pixel_progress=pixel_progress)
        url = run.url
    first = next(iter(masked))
    direct = dl_method(model, meta)(masked[first], planned[0]).mean
    diff = float(np.nanmax(np.abs(direct - preds[first][lead].mean)))
    payload["dl_via"] = (f"{lead}: local openEO backend ({url}, stock openeo client, load_collection → "
                         f"apply_neighborhood with udf.UDF_PATH, 128 px tiles / 8 px overlap; server log in "
                         f"backend/server.log). Check: on {first} its NDVI differs from a direct UDF call by at most "
                         f"{diff:.1e}. Other DL rows: the UDF's code called directly")
    payload["backend_vs_direct_max_abs"] = diff
    return payload, preds, prots


def _loso_section(shipped: dict) -> str:
    """The leave-one-site-out table stored in the shipped weights, as Markdown."""
    summary = shipped.get("loso_summary")
    if not summary:
        return "The shipped weights carry no leave-one-site-out table (trained without `--loso`)."
    lines = ["| held-out site | protocol | DL (self-calibrated) | linear | Whittaker | MOGPR | DL ±1σ |",
             "|---|---|---|---|---|---|---|"]
    for site, rows in summary.items():
        for protocol, row in rows.items():
            cells = [f"{row[m]['mae']:.3f} / {row[m]['r2']:.2f}" if m in row and np.isfinite(row[m].get("mae", np.nan))
                     else "–" for m in ("DL", "Linear", "Whittaker", "MOGPR")]
            cov = row.get("DL", {}).get("within_1std")
            cov_text = "–" if cov is None else f"{100 * cov:.0f} %"
            lines.append(f"| {site} | {LABELS.get(protocol, protocol)} | " + " | ".join(cells) + f" | {cov_text} |")
    return ("MAE / R² on every corpus site, each scored by a model pretrained on the *other* sites (`s1ndvi loso` on "
            "the project's data folder; not rerun by the demo). This is what to expect zero-shot on a new region; "
            "`s1ndvi adapt` on your own cube is how to do better.\n\n" + "\n".join(lines))


def _extra_sections(out: Path, fields: list[tuple], field_pixels: int) -> list[tuple[str, str]]:
    sections = []
    for fpay, fpreds, fprots, fcube in fields:
        figs = site_figures(out, fcube, fprots, fpreds, fpay["metrics"], prefix=f"field_{fpay['field']}_")
        sections.append((f"FuseTS field {fpay['field']} (Castilla y León, 2019)",
                         f"{fpay['field_pixels']} field pixels at 10 m, S2 {fpay['dates'][0]} … {fpay['dates'][1]}; "
                         f"{fpay['scored_pixels']} test-block pixels scored (a seeded subsample, --field-pixels "
                         f"{field_pixels}: MOGPR with 3 outputs is slow). MOGPR: pixel NDVI + field-mean RVI_DESC + "
                         f"RVI_ASC (3 outputs, as the FuseTS workshop). Whittaker λ = {fpay['whittaker_lambda']}. "
                         f"DL: {fpay['dl']}.\n\n{markdown_table(fpay['metrics'])}\n\n{figs}"))
    return sections


def run_demo(out: str | Path, adapt_steps: int = DEMO_ADAPT_STEPS, adapt_minutes: Optional[float] = None,
             seed: int = 0, via: str = "auto",
             field_pixels: int = 6, progress: Step = None, pixel_progress: Pixels = None) -> dict:
    """Run the demo; see the module docstring. Returns the payload written to ``metrics.json``.

    Args:
        out: output folder.
        adapt_steps: optimisation steps of ``s1ndvi adapt`` on the sample (0: zero-shot only).
        adapt_minutes: wall-clock cap of that adaptation (None: none; 0: zero-shot only); it warns when it cuts.
        seed: seed of the split, the protocols, the subsamples and the adaptation.
        via: ``auto``, ``backend`` or ``udf``: how the adapted model is run on the protocols.
        field_pixels: pixels per FuseTS field scored (MOGPR with 3 outputs is the slow part).
        progress: called with a short status text as the work advances.
        pixel_progress: MOGPR's ``(done, total)`` pixels.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cube = eval_cube(load_sample_cube(period=None))
    write_cube(cube, out / "cube_10D.nc")
    split = spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=8, seed=seed)
    steps = 0 if adapt_minutes is not None and adapt_minutes <= 0 else adapt_steps
    models, prov = _models(cube, split, steps, adapt_minutes, seed, out, progress)
    opts = CompareOptions(seed=seed, extra={
        "data": "embedded WorldCereal sample 31UDS (Flanders), 10-day composites, 20 m", "dl_provenance": prov})
    payload, preds, prots = _evaluate_sample(cube, split, opts, models, out, _use_backend(via), progress,
                                             pixel_progress)
    fields = [run_field_case(name, max_pixels=field_pixels, seed=seed, progress=progress,
                             pixel_progress=pixel_progress) for name in FIELDS]
    payload["fusets_fields"] = {f[0]["field"]: f[0] for f in fields}
    from comparison.phenology.evaluate import phenology_section

    payload["phenology"], phenology_md = phenology_section(cube, prots, preds, out, fusets=True)
    shipped = load_checkpoint(None)[1]
    payload["loso_summary"] = shipped.get("loso_summary")
    payload["seconds_total"] = time.perf_counter() - t0
    write_outputs(out, payload, cube, prots, preds, "s1ndvi demo: gap-filling on held-out blocks, DL vs MOGPR",
                  extra_sections=[("How the DL models were run", payload["dl_via"]),
                                  ("On a site the model never saw: leave-one-site-out", _loso_section(shipped))]
                  + _extra_sections(out, fields, field_pixels)
                  + [("Phenology: seasons of the gap-filled series vs the real S2 series", phenology_md)])
    _log.info("Demo finished in %.1f s; outputs in %s", payload["seconds_total"], out)
    return payload
