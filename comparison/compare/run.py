"""The ``s1ndvi compare`` job on a cube file: build the DL method, run :func:`run_comparison`, write the report."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import xarray as xr

from comparison.compare.core import CompareOptions, dl_provenance, load_cube, parse_protocols, run_comparison
from comparison.compare.methods import Method, dl_method
from comparison.compare.report import write_outputs
from udf.evaluation.protocols import SpatialSplit, spatial_block_split
from udf.training.budget import COMPARE_ADAPT_STEPS, describe_budget

_log = logging.getLogger(__name__)

__all__ = ["DL_ROWS", "build_dl", "cloud_agreement", "compare_file"]


DL_ROWS = ("DL adapted", "DL trained here", "DL zero-shot")
"""DL rows of a comparison, in the order the head-to-head with MOGPR picks its DL row."""


def build_dl(dl: str, cube: xr.DataArray, split: SpatialSplit, train_minutes: Optional[float], seed: int,
             device: str, out: Path, adapt_steps: Optional[int] = None, adapt_minutes: Optional[float] = None,
             progress: Optional[Callable[[str], None]] = None) -> tuple[dict[str, Method], dict[str, str]]:
    """The DL rows and a sentence on each one's provenance.

    - ``DL zero-shot``: the checkpoint ``dl`` (``shipped``: the default weights) applied as is;
    - ``DL adapted`` (``adapt_steps`` optimisation steps, ``adapt_minutes`` a wall-clock cap that warns when it
      cuts them short; None or 0 steps skips it): that checkpoint fine-tuned here with ``s1ndvi adapt`` on the training
      blocks (validation blocks choose the epoch kept and recalibrate the std); the test pixels' NDVI is removed
      from the cube it sees, so no hidden value (of any protocol) ever reaches it;
    - ``DL trained here`` (``train_minutes``): a fresh model trained on the training blocks.
    """
    from udf.weights import load_checkpoint, save_checkpoint

    source = None if dl == "shipped" else Path(dl)
    if source is not None and not source.exists():
        raise FileNotFoundError(f"DL checkpoint '{source}' does not exist (give a .npz from `s1ndvi pretrain`, "
                                "`s1ndvi adapt` or `s1ndvi train`).")
    base, base_meta = load_checkpoint(source)
    methods = {"DL zero-shot": dl_method(base, base_meta, device=device)}
    prov = {"DL zero-shot": ("shipped weights: " if source is None else f"{source}: ")
            + dl_provenance(base_meta, cube, split)}
    if adapt_steps:
        from udf.training.adapt import AdaptOptions, adapt

        blind = cube.copy(data=cube.values.copy())
        blind.loc[{"bands": "NDVI"}] = np.where(split.test[None], np.nan, cube.sel(bands="NDVI").values)
        model, meta = adapt(blind, base, base_meta, AdaptOptions(steps=adapt_steps, minutes=adapt_minutes, seed=seed,
                                                                  device=device),
                            split=split, score_test=False)
        meta["training_data"]["source"] = "this cube's training blocks (s1ndvi adapt in s1ndvi compare)"
        save_checkpoint(model, meta, out / "model_adapted.npz")
        methods["DL adapted"] = dl_method(model, meta, device=device)
        prov["DL adapted"] = (f"the zero-shot model adapted here on the training blocks ({describe_budget(meta['adapt'])}"
                              "; std recalibrated on validation blocks to "
                              f"{100 * meta['validation_std_coverage']['within_1std']:.0f} % at ±1σ); the test "
                              "pixels' NDVI was removed from its cube; saved as model_adapted.npz")
        if progress:
            progress("adapt")
    if train_minutes is not None:
        from udf.model import ModelConfig
        from udf.training.fit import fit
        from udf.training.loop import in_site_config

        model, meta = fit(cube, split, in_site_config(model=ModelConfig.with_calendar(), max_minutes=train_minutes,
                                                      seed=seed))
        meta["training_data"]["source"] = "this cube's training blocks"
        save_checkpoint(model, meta, out / "model.npz")
        methods["DL trained here"] = dl_method(model, meta, device=device)
        prov["DL trained here"] = (f"trained from scratch here on the training blocks ({train_minutes:g} min budget, "
                                   f"{len(meta.get('history', []))} epochs); saved as model.npz")
    return methods, prov


def _zero_shot_saw_cube(dl: str, cube: xr.DataArray) -> list[str]:
    """``["DL zero-shot"]`` when that checkpoint trained on pixels of this cube (in-sample for P3S/P3C), else ``[]``."""
    from comparison.compare.shift import trained_on_cube
    from udf.weights import load_checkpoint

    _, meta = load_checkpoint(None if dl == "shipped" else Path(dl))
    return ["DL zero-shot"] if trained_on_cube(meta, cube) else []


def cloud_agreement(path: str | Path, restarts: int = 3, device: str = "cpu", max_pixels: int = 64,
                    seed: int = 0) -> dict:
    """Local MOGPR re-run on a cloud file's own raw inputs, compared with the cloud means at the file's dates.

    Answers "does the fast local MOGPR reproduce the service?" independently of any protocol. Needs the raw bands.
    """
    from comparison.mogpr import fit_predict
    from comparison.result_files import read_cloud_mogpr

    res = read_cloud_mogpr(path)
    names = [str(b) for b in res["bands"].values]
    if "NDVI_RAW" not in names:
        return {"skipped": f"no raw input bands in '{path}' (bands {names})"}
    days = (res["t"].values.astype("datetime64[D]").astype(np.int64)).astype(np.float64)
    raw = res.sel(bands=["RVI_RAW", "NDVI_RAW"]).transpose("y", "x", "t", "bands").values
    raw = raw.reshape(-1, len(days), 2)
    cloud = res.sel(bands="NDVI").transpose("y", "x", "t").values.reshape(-1, len(days))
    pick = np.random.default_rng(seed).permutation(len(raw))[:max_pixels]
    obs = np.isfinite(raw[pick]).any(2)
    fit = fit_predict(days, np.where(obs[:, :, None], raw[pick], np.nan), days, n_restarts=restarts, device=device)
    diff = fit.mean[:, :, 1] - cloud[pick]
    ok = np.isfinite(diff)
    return {"pixels": int(len(pick)), "failed_local": int(fit.n_failed), "n": int(ok.sum()),
            "rmse": float(np.sqrt(np.mean(diff[ok] ** 2))) if ok.any() else float("nan"),
            "max_abs": float(np.abs(diff[ok]).max()) if ok.any() else float("nan")}


def compare_file(cube_path: str | Path, out: Path, protocols: str = "P1,P2,P3", dl: Optional[str] = "shipped",
                 train_minutes: Optional[float] = None, adapt_steps: Optional[int] = COMPARE_ADAPT_STEPS,
                 adapt_minutes: Optional[float] = None,
                 mogpr: Optional[str] = "local", mogpr_restarts: int = 3,
                 cropsar: Optional[str] = None, max_pixels: Optional[int] = None, block: int = 8,
                 s1_units: str = "auto", device: str = "cpu", seed: int = 0,
                 progress: Optional[Callable[[str], None]] = None,
                 pixel_progress: Optional[Callable[[int, int], None]] = None, phenology: bool = False,
                 classes: str = "auto", clusters: int = 4, class_min_size: int = 20, checker_block: int = 8) -> Path:
    """Run ``s1ndvi compare`` and return the path of ``report.md`` (see the CLI's ``--help`` for the options)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cube = load_cube(cube_path, s1_units=s1_units)
    opts = CompareOptions(protocols=parse_protocols(protocols), mogpr=mogpr, mogpr_restarts=mogpr_restarts,
                          cropsar=cropsar, max_pixels=max_pixels, block=block, seed=seed, device=device,
                          classes=classes, clusters=clusters, class_min_size=class_min_size,
                          checker_block=checker_block)
    split = spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=block, seed=seed)
    methods: dict[str, Method] = {}
    extra: dict = {"cube_file": str(cube_path)}
    if dl is not None:
        methods, extra["dl_provenance"] = build_dl(dl, cube, split, train_minutes, seed, device, out,
                                                   adapt_steps=adapt_steps, adapt_minutes=adapt_minutes,
                                                   progress=progress)
        extra["dl_trained_on_cube"] = _zero_shot_saw_cube(dl, cube)
    opts = replace(opts, extra=extra)
    payload, predictions, prots = run_comparison(cube, opts, dl=methods, split=split, progress=progress,
                                                 pixel_progress=pixel_progress)
    sections = []
    if "per_class" in payload:
        from comparison.compare.shift import per_class_table

        sections.append(("S1-only scenarios per land-cover class (bias, MAE, R², ±1σ/±2σ coverage)",
                         per_class_table(payload["per_class"], payload["classes"])))
    if phenology:
        from comparison.phenology.evaluate import phenology_section

        payload["phenology"], text = phenology_section(cube, prots, predictions, out)
        sections.append(("Phenology: seasons of the gap-filled series vs the real S2 series", text))
    if mogpr not in (None, "local", "gpy"):
        agree = cloud_agreement(mogpr, restarts=mogpr_restarts, device=device, seed=seed)
        payload["cloud_vs_local_mogpr"] = agree
        sections.append(("Cloud MOGPR file vs local MOGPR on the file's own inputs",
                         agree.get("skipped") or (
                             f"Local MOGPR re-fitted on the raw RVI/NDVI bands of {agree['pixels']} pixels of the "
                             f"file and predicted at its {agree['n'] // max(agree['pixels'], 1)} dates: NDVI RMSE "
                             f"{agree['rmse']:.4f}, max |Δ| {agree['max_abs']:.4f} against the file's fused NDVI "
                             f"({agree['failed_local']} pixels not fitted locally).")))
    return write_outputs(out, payload, cube, prots, predictions, f"s1ndvi compare: {Path(cube_path).name}",
                         extra_sections=sections)
