"""Sub-commands of the fusion core: ``cube``, ``train``, ``predict``, ``export-udf``, ``phenology``."""

import argparse
import json
import logging
from pathlib import Path

from tqdm import tqdm

from udf.phenology_cli import register_phenology

_log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the core sub-commands to the ``s1ndvi`` parser."""
    p = sub.add_parser("cube", help="build a model cube (t, bands[VV,VH,NDVI], y, x) from S1 + S2 files")
    p.add_argument("--s1", required=True, help="S1 netCDF (WorldCereal layout or openEO export)")
    p.add_argument("--s2", help="S2 L2A netCDF with B04, B08 (and SCL unless --scl)")
    p.add_argument("--scl", help="separate netCDF holding SCL (WorldCereal 20 m file)")
    p.add_argument("--s1-units", default="auto", choices=["auto", "db", "linear", "uint16_db"])
    p.add_argument("--period", default="10D", help="composite period, e.g. 5D/10D/12D, or 'acquisition'")
    p.add_argument("--start", help="first day of the grid (YYYY-MM-DD)")
    p.add_argument("--end", help="last day of the grid (YYYY-MM-DD)")
    p.add_argument("--cloud-dilation", type=int, default=0, help="grow SCL clouds/shadows by N pixels")
    p.add_argument("--out", required=True, help="output netCDF (openEO layout)")
    p.set_defaults(func=cmd_cube)

    p = sub.add_parser("train", help="train the fusion model on a cube's training blocks")
    p.add_argument("--cube", required=True, help="model cube, ideally per acquisition (--period acquisition)")
    p.add_argument("--out", required=True, help="checkpoint to write (.npz)")
    p.add_argument("--arch", default="gru", choices=["gru", "tcn"])
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget")
    p.add_argument("--block", type=int, default=8, help="spatial hold-out block edge (pixels)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="run the UDF code path on a cube")
    p.add_argument("--cube", required=True)
    p.add_argument("--model", default=None, help="checkpoint (default: shipped weights)")
    p.add_argument("--out", required=True)
    p.add_argument("--uncertainty", action="store_true", help="add band NDVI_STD")
    p.add_argument("--s1-units", default="auto", choices=["auto", "db", "linear", "uint16_db"])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=4096)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export-udf", help="write a self-contained UDF file (code + weights embedded)")
    p.add_argument("out")
    p.add_argument("--model", default=None, help="checkpoint to embed (default: shipped weights)")
    p.add_argument("--phenology", action="store_true", help="export the phenology UDF instead of the fusion UDF")
    p.set_defaults(func=cmd_export_udf)

    register_phenology(sub)


def cmd_cube(args: argparse.Namespace) -> int:
    """``s1ndvi cube``."""
    from udf.cube_io import write_cube
    from udf.ingest import build_cube, load_s1, load_s2_ndvi

    s1 = load_s1(args.s1, s1_units=args.s1_units)
    ndvi = load_s2_ndvi(args.s2, s1, scl_path=args.scl, cloud_dilation=args.cloud_dilation) if args.s2 else None
    period = None if args.period == "acquisition" else args.period
    cube = build_cube(s1, ndvi, period=period, start=args.start, end=args.end)
    write_cube(cube, args.out)
    _log.warning("Wrote %s: %s", args.out, dict(cube.sizes))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``s1ndvi train``."""
    import torch

    from udf.cube_io import read_cube
    from udf.fit import fit
    from udf.model import ModelConfig
    from udf.protocols import spatial_block_split
    from udf.training import TrainConfig
    from udf.weights import save_checkpoint

    torch.manual_seed(args.seed)
    cube = read_cube(args.cube)
    split = spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=args.block, seed=args.seed)
    cfg = TrainConfig(model=ModelConfig(arch=args.arch, hidden=args.hidden), epochs=args.epochs,
                      max_minutes=args.minutes, seed=args.seed)
    with tqdm(total=cfg.epochs, desc="train", unit="epoch") as bar:
        def progress(epoch: int, record: dict) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_mae=f"{record['val_score']:.4f}")

        model, meta = fit(cube, split, cfg, progress=progress)
    meta["training_data"]["source"] = str(args.cube)
    save_checkpoint(model, meta, args.out)
    _log.warning("Held-out metrics: %s", json.dumps(meta["heldout_metrics"], indent=1))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """``s1ndvi predict``: same code path as the UDF (``apply_datacube``)."""
    from udf.cube_io import read_cube, write_cube
    from udf.s1_ndvi_udf import apply_datacube

    cube = read_cube(args.cube)
    context = {"weights": args.model, "include_uncertainty": args.uncertainty, "s1_units": args.s1_units,
               "device": args.device, "batch_size": args.batch_size}
    pred = apply_datacube(cube, context)
    write_cube(pred, args.out)
    return 0


def cmd_export_udf(args: argparse.Namespace) -> int:
    """``s1ndvi export-udf``."""
    from udf.export import export_phenology_udf, export_udf

    if args.phenology:
        if args.model:
            raise SystemExit("export-udf --phenology embeds no model: drop --model")
        out = export_phenology_udf(Path(args.out))
        _log.warning("Wrote self-contained phenology UDF %s", out)
        return 0
    out = export_udf(Path(args.out), weights=args.model)
    _log.warning("Wrote self-contained UDF %s", out)
    return 0
