"""The main job on the embedded sample: the whole story in one command, in a few minutes on a laptop.

1. Build the 10-day model cube of the embedded WorldCereal patch; cut it into spatial blocks.
2. Train the DL model on the training blocks (or take the shipped weights, trained on the same blocks).
3. Draw each protocol's hidden observations once; run the DL model through the local openEO backend (a process
   graph sent with the stock client) when the backend extra is installed, else through the UDF directly; run
   MOGPR on the same held-out pixels, and the baselines; score them all on the same hidden values.
4. Cross-site check (Belgian monthly cube) and the FuseTS fields (MOGPR vs CropSAR vs Whittaker).
5. Write ``metrics.json``, ``report.md``, figures and the gap-filled cube ``ndvi_fused.nc``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from comparison.compare import CompareOptions, masked_cubes, plan, run_comparison
from comparison.compare_report import site_figures, write_outputs
from comparison.cross_site import run_cross_site
from comparison.errors import OptionalDependencyMissing
from comparison.field_case import FIELDS, run_field_case
from comparison.methods import Method, dl_method
from comparison.report import markdown_table
from comparison.via_backend import LocalBackendRun, backend_available, backend_dl_method, cube_key, fuse_graph, udf_context
from udf.cube_io import write_cube
from udf.fit import eval_cube, fit
from udf.inference import predict_cube
from udf.ingest import load_sample_cube
from udf.protocols import spatial_block_split
from udf.training import TrainConfig
from udf.weights import load_checkpoint, save_checkpoint

_log = logging.getLogger(__name__)

__all__ = ["run_demo"]

Step = Optional[Callable[[str], None]]
Pixels = Optional[Callable[[int, int], None]]


def _model(acq, split, train: bool, minutes: float, seed: int, out: Path,  # type: ignore[no-untyped-def]
           progress: Step):
    """``(model, meta, weights path or None for the shipped weights)``."""
    if not train:
        model, meta = load_checkpoint(None)
        if meta.get("split") != split.describe():
            raise ValueError(f"The shipped weights were trained on split {meta.get('split')}, not on the demo's "
                             f"{split.describe()}: their held-out blocks would not be held out. Retrain (drop --no-train).")
        return model, meta, None
    cfg = TrainConfig(max_minutes=minutes, seed=seed)
    model, meta = fit(acq, split, cfg, progress=(lambda e, r: progress(f"epoch {e}: val MAE {r['val_score']:.4f}"))
                      if progress else None)
    meta["training_data"]["source"] = "embedded WorldCereal sample 31UDS (per acquisition)"
    path = out / "model.npz"
    save_checkpoint(model, meta, path)
    return model, meta, path


def _describe(meta: dict) -> str:
    m = meta.get("model") or meta.get("training", {}).get("model", {})
    return (f"{m.get('arch', '?')} hidden {m.get('hidden', '?')}, {len(meta.get('history', []))} epochs, "
            f"std scale {meta.get('std_scale', 1.0):.2f}")


def _use_backend(via: str) -> bool:
    if via == "udf":
        return False
    if backend_available():
        return True
    if via == "backend":
        raise OptionalDependencyMissing('--via backend needs the local backend: pip install -e ".[backend]"')
    _log.warning("Local backend not installed (pip install -e \".[backend]\"): calling the UDF directly")
    return False


def _evaluate_sample(cube, split, opts, model, meta, weights, out: Path, via_backend: bool,  # type: ignore[no-untyped-def]
                     progress: Step, pixel_progress: Pixels) -> tuple[dict, dict, dict]:
    """Protocols on the sample with the DL model through the backend (and checked against the UDF) or direct."""
    planned = plan(cube, opts, split)
    if not via_backend:
        dl: dict[str, Method] = {"DL": dl_method(model, meta)}
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
        payload, preds, prots = run_comparison(cube, opts, dl={"DL": backend_dl_method(run, weights)}, split=split,
                                               planned=planned, progress=progress, pixel_progress=pixel_progress)
        url = run.url
    first = next(iter(masked))
    direct = dl_method(model, meta)(masked[first], planned[0]).mean
    diff = float(np.nanmax(np.abs(direct - preds[first]["DL"].mean)))
    payload["dl_via"] = (f"local openEO backend ({url}, stock openeo client, load_collection → apply_neighborhood "
                         f"with udf.UDF_PATH, 128 px tiles / 8 px overlap). Check: on {first} its NDVI differs from a "
                         f"direct UDF call by at most {diff:.1e}")
    payload["backend_vs_direct_max_abs"] = diff
    return payload, preds, prots


def _extra_sections(out: Path, cross: tuple, fields: list[tuple], field_pixels: int) -> list[tuple[str, str]]:
    cpay, cpreds, cprots, ccube = cross
    cfigs = site_figures(out, ccube, cprots, cpreds, cpay["metrics"], prefix="cross_site_")
    sections = [("Cross-site: a site the model never saw",
                 f"{cpay['site']}. The DL model is applied as trained (monthly steps are outside its 5–16-day "
                 f"training grids); Whittaker λ = {cpay.get('whittaker_lambda')} chosen on this site's training "
                 f"blocks; MOGPR fitted per pixel. Scored: {cpay['scored_pixels']} test pixels (a seeded subsample)."
                 f"\n\n{markdown_table(cpay['metrics'])}\n\n{cfigs}")]
    for fpay, fpreds, fprots, fcube in fields:
        figs = site_figures(out, fcube, fprots, fpreds, fpay["metrics"], prefix=f"field_{fpay['field']}_")
        sections.append((f"FuseTS field {fpay['field']} (Castilla y León, 2019)",
                         f"{fpay['field_pixels']} field pixels at 10 m, S2 {fpay['dates'][0]} … {fpay['dates'][1]}; "
                         f"{fpay['scored_pixels']} test-block pixels scored (a seeded subsample, --field-pixels "
                         f"{field_pixels}). MOGPR: pixel NDVI + field-mean RVI_DESC + RVI_ASC (3 outputs, as the "
                         f"FuseTS workshop). Whittaker λ = {fpay['whittaker_lambda']}. DL: {fpay['dl']}."
                         f"\n\n{markdown_table(fpay['metrics'])}\n\n{figs}"))
    return sections


def run_demo(out: str | Path, train: bool = True, minutes: float = 1.5, seed: int = 0, via: str = "auto",
             field_pixels: int = 24, progress: Step = None, pixel_progress: Pixels = None) -> dict:
    """Run the demo; see the module docstring. Returns the payload written to ``metrics.json``.

    Args:
        out: output folder.
        train: train a model (else use the shipped weights, which were trained on the same training blocks).
        minutes: training budget.
        seed: seed of the split, the protocols, the subsamples and the training.
        via: ``auto``, ``backend`` or ``udf``: how the DL model is run on the protocols.
        field_pixels: pixels per FuseTS field scored (MOGPR with 3 outputs is the slow part).
        progress: called with a short status text as the work advances.
        pixel_progress: MOGPR's ``(done, total)`` pixels.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    acq = load_sample_cube(period=None)
    cube = eval_cube(acq)
    write_cube(cube, out / "cube_10D.nc")
    split = spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=8, seed=seed)
    model, meta, weights = _model(acq, split, train, minutes, seed, out, progress)
    opts = CompareOptions(seed=seed, extra={
        "data": "embedded WorldCereal sample 31UDS (Flanders), 10-day composites, 20 m", "trained_here": train,
        "dl_provenance": ("trained in this run on the training blocks" if train else "shipped weights, trained on "
                          "the same training blocks") + f" ({_describe(meta)})"})
    payload, preds, prots = _evaluate_sample(cube, split, opts, model, meta, weights, out, _use_backend(via),
                                             progress, pixel_progress)
    cross = run_cross_site(model, meta, seed=seed, progress=progress, pixel_progress=pixel_progress)
    fields = [run_field_case(name, max_pixels=field_pixels, seed=seed, progress=progress,
                             pixel_progress=pixel_progress) for name in FIELDS]
    payload["cross_site"] = cross[0]
    payload["fusets_fields"] = {f[0]["field"]: f[0] for f in fields}
    from comparison.phenology_eval import phenology_section

    payload["phenology"], phenology_md = phenology_section(cube, prots, preds, out, fusets=True)
    payload["seconds_total"] = time.perf_counter() - t0
    write_outputs(out, payload, cube, prots, preds, "s1ndvi demo: gap-filling on held-out blocks, DL vs MOGPR",
                  extra_sections=[("How the DL model was run", payload["dl_via"])]
                  + _extra_sections(out, cross, fields, field_pixels)
                  + [("Phenology: seasons of the gap-filled series vs the real S2 series", phenology_md)])
    _log.info("Demo finished in %.1f s; outputs in %s", payload["seconds_total"], out)
    return payload
