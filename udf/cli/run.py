"""``s1ndvi run``: the whole job in one command, from the user's own export to maps.

Stages (each reused on a rerun when finished, see :mod:`udf.cli.run_stages`):

1. ``cube``: read the export (period folder, ``timeseries.nc``, or any input ``s1ndvi cube`` reads) →
   ``cube.nc``;
2. ``adapt``: fine-tune the shipped model on the cube's own clear pixels for a budget of steps, with the trust report
   (skipped, and said so, when the cube has too little S2 for it) → ``model.npz``;
3. ``fuse``: gap-free NDVI and NDVI_STD for every pixel and step → ``fused.nc``;
4. ``phenology``: seasons per farming year (SOS/POS/EOS, length, peak, amplitude, number of seasons) →
   ``phenology.nc``;
5. ``products``: Cloud-Optimised GeoTIFFs per band and farming year (``cog/<year>/``), PNG maps per farming year
   (``maps/``) and ``report.md`` (what was read and decided, S2 coverage, the trust report, the outputs).
"""

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from udf.preprocess import S1_UNITS
from udf.training.budget import ADAPT_STEPS_PER_EPOCH, RUN_ADAPT_STEPS

__all__ = ["RunOptions", "register", "run_pipeline"]

_log = logging.getLogger(__name__)

USER_ERRORS: tuple[type[Exception], ...] = ()


@dataclass(frozen=True)
class RunOptions:
    """Options of ``s1ndvi run``."""

    inputs: tuple[str, ...]
    out: Path
    start: str | None = None
    period: str | None = None
    bands: tuple[str, ...] | None = None
    s1_units: str = "auto"
    s1_backscatter: str = "auto"
    adapt_steps: int = RUN_ADAPT_STEPS
    adapt_minutes: float | None = None
    adapt: bool = True
    adapt_epoch_steps: int = ADAPT_STEPS_PER_EPOCH
    block: int | None = None
    base: str | None = None
    year_start: str = "11-01"
    max_seasons: int = 3
    date_samples: int = 8
    """Perturbed series per pixel for each season date's std (SOS_STD_k, …) and CONF_k; 0 = no date uncertainty."""
    device: str = "cpu"
    seed: int = 0
    force: bool = False


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``run`` to the ``s1ndvi`` parser."""
    from udf.cli.commands import parse_bands, parse_day, parse_period

    p = sub.add_parser(
        "run", help="the whole job: export → cube → adapt → fused NDVI + NDVI_STD → phenology → COGs, maps, report",
        description="Read your export (a folder of period_NN.tif, a timeseries.nc, or anything `s1ndvi cube` "
                    "reads), adapt the model on its clear pixels, fuse, extract phenology per farming year and write "
                    "Cloud-Optimised GeoTIFFs, netCDF, PNG maps and a short report under --out. A rerun reuses the "
                    "stages that finished (markers in OUT/.stages). Recipes: docs/run.md.")
    p.add_argument("--input", required=True, nargs="+", help="period folder / period files, timeseries.nc, ...")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--start", type=parse_day, help="first day of period 1 (period folders hold no dates), YYYY-MM-DD")
    p.add_argument("--period", type=parse_period, default=None,
                   help="length of a period (e.g. 12D): dates of a period folder; composited inputs keep their steps")
    p.add_argument("--bands", type=parse_bands, default=None,
                   help="band names in file order when the GeoTIFFs have no band descriptions, e.g. VV,VH,S2ndvi; "
                        "one name (VH) for a stack with one band per period")
    p.add_argument("--s1-units", default="auto", choices=list(S1_UNITS),
                   help="encoding of the S1 values (default auto: decided from the range, and logged)")
    p.add_argument("--s1-backscatter", default="auto", choices=["auto", "sigma0", "gamma0"],
                   help="record the backscatter convention when the input does not say it")
    p.add_argument("--adapt-steps", type=int, default=RUN_ADAPT_STEPS,
                   help=f"fine-tuning budget on the cube's clear pixels, optimisation steps (default {RUN_ADAPT_STEPS}"
                        ", about what the former 2-minute budget ran on a quiet 2-core CPU): seeded, so the same model "
                        "on any machine")
    p.add_argument("--adapt-minutes", type=float, default=None,
                   help="wall-clock cap of the fine-tuning, minutes (default: none); if it runs out first, training "
                        "stops there with a warning and the result depends on the machine's speed and load")
    p.add_argument("--adapt-epoch-steps", type=int, default=ADAPT_STEPS_PER_EPOCH,
                   help="optimisation steps between two validations (the best is kept) and cap checks "
                        f"(default {ADAPT_STEPS_PER_EPOCH})")
    p.add_argument("--no-adapt", action="store_true", help="use the shipped (or --model) weights as they are")
    p.add_argument("--model", default=None, help="checkpoint to start from (default: the shipped weights)")
    p.add_argument("--block", type=int, default=None, help="adapt's hold-out block edge in pixels (default ~1/8)")
    p.add_argument("--year-start", default="11-01", help="farming year start, MM-DD (default 11-01)")
    p.add_argument("--max-seasons", type=int, default=3, help="season slots per farming year (default 3)")
    p.add_argument("--date-samples", type=int, default=8,
                   help="series sampled within ±NDVI_STD per pixel for each season date's uncertainty (SOS_STD_k, "
                        "POS_STD_k, EOS_STD_k, days) and confidence CONF_k; 0 = none; the phenology stage's cost "
                        "grows about 1 + this (default 8)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of adapt's split and training (default 0)")
    p.add_argument("--force", action="store_true", help="redo every stage (ignore the markers of finished ones)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """``s1ndvi run``."""
    from udf.cli.output import say

    opts = RunOptions(inputs=tuple(args.input), out=Path(args.out), start=args.start, period=args.period,
                      bands=args.bands, s1_units=args.s1_units, s1_backscatter=args.s1_backscatter,
                      adapt_steps=args.adapt_steps, adapt_minutes=args.adapt_minutes, adapt=not args.no_adapt,
                      adapt_epoch_steps=args.adapt_epoch_steps, block=args.block, base=args.model,
                      year_start=args.year_start, max_seasons=args.max_seasons, date_samples=args.date_samples,
                      device=args.device, seed=args.seed, force=args.force)
    report = run_pipeline(opts, say)
    say(f"Wrote {report} (and cube.nc, fused.nc, phenology.nc, cog/, maps/ beside it)")
    return 0


def run_pipeline(opts: RunOptions, say=_log.info) -> Path:  # type: ignore[no-untyped-def]
    """Run (or resume) every stage; return the report's path."""
    from udf.cli.run_stages import StageRunner

    _pheno_config(opts)  # bad options fail before any work
    from udf.errors import InvalidContext

    if opts.adapt_steps < 1:
        raise InvalidContext(f"--adapt-steps {opts.adapt_steps}: expected a positive number of steps (or --no-adapt).")
    if opts.adapt_minutes is not None and opts.adapt_minutes <= 0:
        raise InvalidContext(f"--adapt-minutes {opts.adapt_minutes}: expected a positive time cap (or --no-adapt).")
    if opts.adapt_epoch_steps < 1:
        raise InvalidContext(f"--adapt-epoch-steps {opts.adapt_epoch_steps}: expected a positive integer.")
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    runner = StageRunner(out, 5, say, force=opts.force)
    paths = {"cube": out / "cube.nc", "model": out / "model.npz", "fused": out / "fused.nc",
             "pheno": out / "phenology.nc", "report": out / "report.md"}
    cube_opts = {"inputs": [str(Path(p).resolve()) for p in opts.inputs], "start": opts.start, "period": opts.period,
                 "bands": opts.bands, "s1_units": opts.s1_units, "s1_backscatter": opts.s1_backscatter,
                 "mtimes": [_mtime(p) for p in opts.inputs]}
    summaries = {"cube": runner.run("cube", cube_opts, [paths["cube"]], lambda: _stage_cube(opts, paths["cube"]))}
    adapt_opts = {"adapt": opts.adapt, "steps": opts.adapt_steps, "minutes": opts.adapt_minutes,
                  "epoch_steps": opts.adapt_epoch_steps,
                  "block": opts.block, "base": opts.base,
                  "seed": opts.seed}
    summaries["adapt"] = runner.run("adapt", adapt_opts, [paths["model"]] if opts.adapt else [],
                                    lambda: _stage_adapt(opts, paths))
    weights = summaries["adapt"].get("weights")
    summaries["fuse"] = runner.run("fuse", {"weights": weights}, [paths["fused"]],
                                   lambda: _stage_fuse(opts, paths, weights))
    pheno_opts = {"year_start": opts.year_start, "max_seasons": opts.max_seasons, "date_samples": opts.date_samples}
    summaries["phenology"] = runner.run("phenology", pheno_opts, [paths["pheno"]], lambda: _stage_pheno(opts, paths))
    runner.run("products", {}, [paths["report"]], lambda: _stage_products(opts, paths, summaries, runner))
    return paths["report"]


def _mtime(path: str) -> float:
    p = Path(path)
    if p.is_dir():
        return max([f.stat().st_mtime for f in p.iterdir()] or [p.stat().st_mtime])
    return p.stat().st_mtime if p.exists() else 0.0


def _s2_coverage(cube: xr.DataArray) -> dict:
    nd = cube.sel(bands="NDVI").values
    ok = np.isfinite(nd)
    per_step = ok.reshape(ok.shape[0], -1).mean(axis=1)
    return {"values_with_ndvi": float(ok.mean()), "pixels_with_any_ndvi": float(ok.any(axis=0).mean()),
            "steps_with_any_ndvi": int((per_step > 0).sum()), "steps": int(ok.shape[0]),
            "median_ndvi_per_pixel": float(np.median(ok.sum(axis=0)))}


def _stage_cube(opts: RunOptions, path: Path) -> dict:
    from udf.ingest.options import IngestOptions
    from udf.ingest.sources import make_cube, write_cube_lazily

    period = "auto" if opts.period is None else (None if opts.period == "acquisition" else opts.period)
    cube = make_cube(list(opts.inputs), None, IngestOptions(start=opts.start, period=period, bands=opts.bands,
                                                            s1_units=opts.s1_units,
                                                            s1_backscatter=opts.s1_backscatter))
    write_cube_lazily(cube, path)
    from udf.ingest.cube_io import read_cube

    cube = read_cube(path)
    t = cube["t"].values
    return {"sizes": {k: int(v) for k, v in cube.sizes.items()}, "first": str(t[0])[:10], "last": str(t[-1])[:10],
            "attrs": {k: str(v) for k, v in cube.attrs.items() if k != "crs"}, "s2": _s2_coverage(cube)}


def _stage_adapt(opts: RunOptions, paths: dict[str, Path]) -> dict:
    from udf.cli.progress import progress_bar
    from udf.errors import CubeTooSmall, NotEnoughNDVI
    from udf.ingest.cube_io import read_cube
    from udf.training.adapt import AdaptOptions, adapt, format_trust_report
    from udf.weights import load_checkpoint, save_checkpoint

    if not opts.adapt:
        return {"weights": opts.base, "adapted": False, "reason": "--no-adapt"}
    cube = read_cube(paths["cube"])
    base, base_meta = load_checkpoint(opts.base)
    aopts = AdaptOptions(steps=opts.adapt_steps, minutes=opts.adapt_minutes, block=opts.block, seed=opts.seed,
                         device=opts.device, steps_per_epoch=opts.adapt_epoch_steps)
    with progress_bar(total=aopts.steps, desc="adapt", unit="step") as bar:
        def progress(epoch: int, record: dict) -> None:
            bar.n = min(aopts.steps, int(record["steps"]))
            bar.refresh()
        try:
            model, meta = adapt(cube, base, base_meta, aopts, progress=progress)
        except (NotEnoughNDVI, CubeTooSmall) as exc:
            _log.warning("Not adapted, the %s weights are used as they are: %s", opts.base or "shipped", exc)
            return {"weights": opts.base, "adapted": False, "reason": " ".join(str(exc).split())}
    meta["training_data"]["source"] = str(paths["cube"])
    save_checkpoint(model, meta, paths["model"])
    text = format_trust_report(meta["trust_report"])
    _log.info("%s", text)
    return {"weights": str(paths["model"]), "adapted": True, "trust_report_text": text, "budget": meta["adapt"],
            "trust_report": json.loads(json.dumps(meta["trust_report"], default=float))}


def _stage_fuse(opts: RunOptions, paths: dict[str, Path], weights: str | None) -> dict:
    from udf.ingest.cube_io import read_cube, write_cube
    from udf.s1_ndvi_udf import apply_datacube

    cube = read_cube(paths["cube"])
    fused = apply_datacube(cube, {"weights": weights, "include_uncertainty": True, "device": opts.device})
    fused.attrs.update({k: v for k, v in cube.attrs.items() if k == "crs"})
    fused.attrs["weights"] = weights or "shipped"
    write_cube(fused, paths["fused"])
    nd = fused.sel(bands="NDVI").values
    std = fused.sel(bands="NDVI_STD").values
    return {"ndvi_defined": float(np.isfinite(nd).mean()), "median_std": float(np.nanmedian(std))}


def _pheno_config(opts: RunOptions):  # type: ignore[no-untyped-def]
    """The phenology settings of a run: seasons per farming year, with date uncertainty unless ``date_samples`` is 0."""
    from udf.phenology import PhenologyConfig

    if opts.date_samples < 0 or opts.date_samples == 1:
        from udf.errors import InvalidContext

        raise InvalidContext(f"--date-samples must be 0 (no date uncertainty) or at least 2, got {opts.date_samples}")
    return PhenologyConfig(year_start=opts.year_start, max_seasons=opts.max_seasons,
                           uncertainty=opts.date_samples > 0, uncertainty_samples=max(opts.date_samples, 2),
                           seed=opts.seed)


def _stage_pheno(opts: RunOptions, paths: dict[str, Path]) -> dict:
    from udf.ingest.cube_io import read_cube, write_cube
    from udf.phenology import phenology_cube

    fused = read_cube(paths["fused"])
    pheno = phenology_cube(fused, _pheno_config(opts))
    write_cube(pheno, paths["pheno"])
    years = {}
    for k, start in enumerate(pheno["t"].values):
        n = pheno.isel(t=k).sel(bands="N_SEASONS").values
        counts = {str(int(c)): int((n == c).sum()) for c in np.unique(n[np.isfinite(n)])}
        years[str(start)[:10]] = {"pixels_by_number_of_seasons": counts, "undetermined": int((~np.isfinite(n)).sum())}
    return {"years": years}


def _stage_products(opts: RunOptions, paths: dict[str, Path], summaries: dict, runner: "object") -> dict:
    from udf.ingest.cube_io import read_cube
    from udf.products.cog import write_phenology_cogs, write_series_cogs
    from udf.products.maps import phenology_maps
    from udf.products.report import write_report

    fused, pheno = read_cube(paths["fused"]), read_cube(paths["pheno"])
    cube = read_cube(paths["cube"])
    fused.attrs.setdefault("crs", cube.attrs.get("crs"))
    pheno.attrs.setdefault("crs", cube.attrs.get("crs"))
    cogs = write_series_cogs(fused, pheno["t"].values, opts.out / "cog")
    cogs += write_phenology_cogs(pheno, opts.out / "cog")
    maps = phenology_maps(pheno, opts.out / "maps", opts.max_seasons)
    write_report(paths["report"], opts, cube, summaries, cogs, maps, runner)
    return {"cogs": len(cogs), "maps": [str(m) for m in maps]}
