"""Sub-commands of the fusion core: ``cube``, ``train``, ``predict``, ``export-udf``, ``phenology``."""

import argparse
import json
import logging
import re
from pathlib import Path

import numpy as np
import xarray as xr

from udf.cli.output import say
from udf.cli.phenology_cli import register_phenology
from udf.cli.progress import progress_bar
from udf.preprocess import S1_UNITS

_log = logging.getLogger(__name__)


def _describe(cube: xr.DataArray) -> str:
    """``bands NDVI, NDVI_STD; t=49 (2017-08-01 … 2018-11-20), y=32, x=32``."""
    dims = ", ".join(f"{d}={n}" for d, n in cube.sizes.items() if d != "bands")
    t = cube["t"].values if "t" in cube.dims else np.array([])
    span = f" ({str(t[0])[:10]} … {str(t[-1])[:10]})" if t.size else ""
    return f"bands {', '.join(str(b) for b in cube['bands'].values)}; {dims}{span}"


def parse_period(value: str) -> str:
    """The ``--period`` argument: ``acquisition`` or ``<N>D``."""
    if value == "acquisition" or re.fullmatch(r"[1-9][0-9]*D", value.strip().upper()):
        return value
    raise argparse.ArgumentTypeError(f"{value!r} is not a composite period; expected a number of days such as 5D, "
                                     "10D or 12D, or 'acquisition'")


def parse_bands(value: str) -> tuple[str, ...]:
    """The ``--bands`` argument: comma-separated band names in file order."""
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"{value!r} lists no band; expected names in file order, e.g. VV,VH,S2ndvi")
    return names


def _period_option(value: str | None) -> str | None:
    """``--period``: None (not given) → ``auto`` (10D, or the input's own steps when composited)."""
    if value is None:
        return "auto"
    return None if value == "acquisition" else value


def parse_day(value: str) -> str:
    """A ``YYYY-MM-DD`` argument (``--start``, ``--end``)."""
    try:
        np.datetime64(value, "D")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day; expected YYYY-MM-DD") from None
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the core sub-commands to the ``s1ndvi`` parser."""
    _register_cube(sub)

    p = sub.add_parser("train", help="train the fusion model on a cube's training blocks")
    p.add_argument("--cube", required=True, help="model cube, ideally per acquisition (--period acquisition)")
    p.add_argument("--out", required=True, help="checkpoint to write (.npz)")
    p.add_argument("--arch", default="gru", choices=["gru", "tcn"],
                   help="network: bidirectional GRU (default) or temporal convolution")
    p.add_argument("--hidden", type=int, default=32, help="hidden units per layer (default 32)")
    p.add_argument("--epochs", type=int, default=60, help="most epochs; early stopping may end sooner (default 60)")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget in minutes (default: none)")
    p.add_argument("--block", type=int, default=8, help="spatial hold-out block edge (pixels, default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the masks (default 0)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="gap-free NDVI for every pixel of a cube (the UDF's code path)")
    p.add_argument("--cube", required=True, help="model cube (t, bands[VV, VH (, NDVI)], y, x), openEO netCDF")
    p.add_argument("--model", default=None, help="checkpoint (default: shipped weights)")
    p.add_argument("--out", required=True, help="output netCDF with band NDVI (and NDVI_STD)")
    p.add_argument("--uncertainty", action="store_true", help="add band NDVI_STD")
    p.add_argument("--s1-units", default="auto", choices=list(S1_UNITS),
                   help="encoding of the S1 values (default auto: decided from dtype and range, and logged)")
    p.add_argument("--device", default="auto", help="torch device: auto (default; CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int, default=4096, help="pixels per forward pass; bounds memory (4096)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export-udf", help="write a self-contained UDF file (code + weights embedded)")
    p.add_argument("out", help="Python file to write (send it to any openEO backend as a UDF)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--model", default=None, help="checkpoint to embed (default: shipped weights)")
    what.add_argument("--phenology", action="store_true", help="export the phenology UDF instead (no weights)")
    p.set_defaults(func=cmd_export_udf)

    register_phenology(sub)


def _register_cube(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cube", help="build a model cube (t, bands[VV,VH,NDVI], y, x) from S1 + S2 exports",
                       description="Inputs: WorldCereal/openEO netCDF, Google Earth Engine GeoTIFFs (toBands stack, "
                       "one file per period, cropharvest) or a folder of per-scene COGs (Planetary Computer / STAC). "
                       "Recipes: docs/recipes/.")
    p.add_argument("--s1", required=True, nargs="+", help="S1 input(s): .nc, .tif (stack or one per period), folder")
    p.add_argument("--s2", nargs="+", help="S2 input(s) with B04/B4, B08/B8 and a mask band (may be the S1 file)")
    p.add_argument("--scl", help="separate netCDF holding SCL (WorldCereal 20 m file)")
    p.add_argument("--layout", default="auto", help="input layout (default: from the files)",
                   choices=["auto", "netcdf", "tobands", "per-period", "cropharvest", "stac-folders"])
    p.add_argument("--dates", help="sidecar CSV/JSON with the images' dates [ids, orbits] of a GEE stack")
    p.add_argument("--s1-units", default="auto", choices=list(S1_UNITS),
                   help="encoding of the S1 values (default auto: decided from dtype and range, and logged)")
    p.add_argument("--s1-backscatter", default="auto", choices=["auto", "sigma0", "gamma0"],
                   help="record the backscatter convention when the input does not say it")
    p.add_argument("--orbit-normalisation", default="per-orbit", choices=["per-orbit", "none"],
                   help="shift each S1 orbit onto the most frequent one per pixel before compositing")
    p.add_argument("--orbit-pair-days", type=float, default=3.0, help="largest gap of an orbit pair (days)")
    p.add_argument("--s2-mask", default="auto", choices=["auto", "scl", "qa60", "probability"],
                   help="S2 cloud information to use (default auto: whichever band the input has)")
    p.add_argument("--cloud-probability", type=float, default=40.0,
                   help="s2cloudless/MSK_CLDPRB probability (%%) above which a pixel is cloudy")
    p.add_argument("--no-cloud-mask", action="store_true",
                   help="accept S2 without a cloud mask (the cube records that NDVI may be cloud-contaminated)")
    p.add_argument("--s2-level", default="auto", choices=["auto", "l2a", "l1c"],
                   help="S2 processing level, recorded in the cube (default auto: from the input)")
    p.add_argument("--period", default=None, type=parse_period,
                   help="composite period, e.g. 5D/10D/12D, or 'acquisition' (default 10D; composited inputs such as "
                        "period folders keep their own steps, and --period gives their length)")
    p.add_argument("--bands", type=parse_bands, default=None,
                   help="band names in file order for period GeoTIFFs without band descriptions, e.g. VV,VH,S2ndvi; "
                        "one name (VH) for a stack with one band per period")
    p.add_argument("--start", type=parse_day, help="first day of the grid (YYYY-MM-DD)")
    p.add_argument("--end", type=parse_day, help="last day of the grid (YYYY-MM-DD)")
    p.add_argument("--cloud-dilation", type=int, default=0, help="grow clouds/shadows by N pixels")
    p.add_argument("--chunk", type=int, default=128, help="spatial block edge (pixels) for lazy reading")
    p.add_argument("--workers", type=int, default=None, help="threads computing blocks (default: min(4, cores))")
    p.add_argument("--out", required=True, help="output netCDF (openEO layout, chunked)")
    p.set_defaults(func=cmd_cube)


def cmd_cube(args: argparse.Namespace) -> int:
    """``s1ndvi cube``."""
    from udf.ingest.options import IngestOptions
    from udf.ingest.sources import make_cube, write_cube_lazily

    opts = IngestOptions(
        layout=args.layout, dates=Path(args.dates) if args.dates else None, s1_units=args.s1_units,
        s1_backscatter=args.s1_backscatter, orbit_normalisation=args.orbit_normalisation,
        orbit_pair_days=args.orbit_pair_days, s2_mask=args.s2_mask, cloud_probability=args.cloud_probability,
        no_cloud_mask=args.no_cloud_mask, cloud_dilation=args.cloud_dilation, s2_level=args.s2_level,
        scl=Path(args.scl) if args.scl else None, period=_period_option(args.period),
        start=args.start, end=args.end, chunk=args.chunk, workers=args.workers, bands=args.bands)
    cube = make_cube(args.s1, args.s2, opts)
    write_cube_lazily(cube, args.out, workers=args.workers)
    say(f"Wrote model cube {args.out}: {_describe(cube)}")
    if "ndvi_warning" in cube.attrs:
        say(f"Warning: {cube.attrs['ndvi_warning']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``s1ndvi train``."""
    import torch

    from udf.evaluation.protocols import spatial_block_split
    from udf.ingest.cube_io import read_cube
    from udf.model import ModelConfig
    from udf.training.fit import check_training_ndvi, cube_acquisitions, fit
    from udf.training.loop import in_site_config
    from udf.weights import save_checkpoint

    torch.manual_seed(args.seed)
    cube = read_cube(args.cube)
    split = spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=args.block, seed=args.seed)
    check_training_ndvi(cube_acquisitions(cube)[1], split.train, split.val)  # before any progress bar
    cfg = in_site_config(model=ModelConfig.with_calendar(arch=args.arch, hidden=args.hidden), epochs=args.epochs,
                      max_minutes=args.minutes, seed=args.seed)
    with progress_bar(total=cfg.epochs, desc="train", unit="epoch") as bar:
        def progress(epoch: int, record: dict) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_mae=f"{record['val_score']:.4f}")

        model, meta = fit(cube, split, cfg, progress=progress)
    meta["training_data"]["source"] = str(args.cube)
    save_checkpoint(model, meta, args.out)
    _log.info("Held-out metrics: %s", json.dumps(meta["heldout_metrics"], indent=1))
    scores = ", ".join(f"{k} MAE {v['mae']:.3f}" for k, v in meta["heldout_metrics"].items())
    say(f"Wrote checkpoint {args.out} ({len(meta.get('history', []))} epochs; held-out test pixels: {scores})")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """``s1ndvi predict``: same code path as the UDF (``apply_datacube``)."""
    from udf.ingest.cube_io import read_cube, write_cube
    from udf.s1_ndvi_udf import apply_datacube

    cube = read_cube(args.cube)
    context = {"weights": args.model, "include_uncertainty": args.uncertainty, "s1_units": args.s1_units,
               "device": args.device, "batch_size": args.batch_size}
    pred = apply_datacube(cube, context)
    write_cube(pred, args.out)
    say(f"Wrote {args.out}: {_describe(pred)}")
    return 0


def cmd_export_udf(args: argparse.Namespace) -> int:
    """``s1ndvi export-udf``."""
    from udf.export import export_phenology_udf, export_udf

    if args.phenology:
        out = export_phenology_udf(Path(args.out))
        say(f"Wrote self-contained phenology UDF {out} ({out.stat().st_size // 1024} kB; needs numpy, xarray, openeo)")
        return 0
    out = export_udf(Path(args.out), weights=args.model)
    say(f"Wrote self-contained UDF {out} ({out.stat().st_size // 1024} kB, weights: {args.model or 'shipped'})")
    return 0
