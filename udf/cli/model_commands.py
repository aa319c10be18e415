"""Sub-commands that make models: ``pretrain`` (multi-site shipped weights) and ``adapt`` (fine-tune on your cube)."""

import argparse
import json
import logging
from pathlib import Path

from udf.cli.progress import progress_bar
from udf.training.budget import DEFAULT_ADAPT_STEPS

_log = logging.getLogger(__name__)

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``pretrain`` and ``adapt`` to the ``s1ndvi`` parser."""
    p = sub.add_parser("adapt", help="fine-tune the pretrained model on your own cube and report whether to trust it",
                       description="Fine-tune the pretrained model on the S2 your cube has (self-supervised: "
                                   "observations are hidden and predicted), recalibrate NDVI_STD on the cube's own "
                                   "held-out blocks, and print a trust report (adapted vs pretrained vs linear vs "
                                   "Whittaker on held-out blocks).")
    p.add_argument("--cube", required=True, help="your model cube (t, bands[VV, VH, NDVI], y, x), netCDF")
    p.add_argument("--out", required=True, help="checkpoint to write (.npz); usable wherever weights are")
    p.add_argument("--base", default=None, help="pretrained checkpoint to start from (default: the shipped weights)")
    p.add_argument("--steps", type=int, default=DEFAULT_ADAPT_STEPS,
                   help=f"fine-tuning budget in optimisation steps (default {DEFAULT_ADAPT_STEPS}: the 450 epochs the "
                        "former 4-minute budget ran on a quiet 2-core CPU): seeded, so the same weights on any machine")
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock cap in minutes (default: none); if it runs out first, training stops there with a "
                        "warning, and the result depends on the machine's speed and load")
    p.add_argument("--device", default="cpu", help="torch device for fine-tuning: cpu or cuda (default cpu)")
    p.add_argument("--block", type=int, default=None,
                   help="spatial hold-out block edge in pixels (default: about 1/8 of the cube, at least 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the masks and the training")
    p.set_defaults(func=cmd_adapt)

    p = sub.add_parser("pretrain", help="train the multi-site model (the shipped weights) on a corpus folder",
                       description="Train the fusion model on every site of the corpus (see udf/training/corpus/sites.py) "
                                   "found under --data; sources missing there are skipped.")
    p.add_argument("--data", required=True, help="corpus folder (holding multisite/, worldcereal_monthly/ ...)")
    p.add_argument("--out", required=True, help="checkpoint to write (.npz)")
    p.add_argument("--loso", default=None,
                   help="loso.json from `s1ndvi loso`: its cross-site std scale and table go into the checkpoint")
    p.add_argument("--holdout", default=None,
                   help="comma-separated sites to leave out (a leave-one-site-out model, e.g. for a zero-shot demo)")
    p.add_argument("--epochs", type=int, default=None, help="most epochs (default: TrainConfig's)")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps per epoch")
    p.add_argument("--hidden", type=int, default=None, help="GRU width")
    p.add_argument("--seed", type=int, default=0, help="seed of the training")
    p.set_defaults(func=cmd_pretrain)


def _bar(total: int, desc: str):  # type: ignore[no-untyped-def]
    bar = progress_bar(total=total, desc=desc, unit="epoch")

    def progress(epoch: int, record: dict) -> None:
        bar.update(1)
        bar.set_postfix(val_mae=f"{record['val_score']:.4f}", minutes=f"{record['minutes']:.1f}")
    return bar, progress


def _steps_bar(steps: int, desc: str):  # type: ignore[no-untyped-def]
    """A progress bar over a training budget of optimisation steps, with the epoch and validation MAE."""
    bar = progress_bar(total=steps, desc=desc, unit="step")
    best = [float("inf")]

    def progress(epoch: int, record: dict) -> None:
        best[0] = min(best[0], record["val_score"])
        bar.n = min(steps, int(record["steps"]))
        bar.set_postfix(epoch=epoch + 1, val_mae=f"{record['val_score']:.4f}", best=f"{best[0]:.4f}")
    return bar, progress


def cmd_adapt(args: argparse.Namespace) -> int:
    """``s1ndvi adapt``."""
    from udf.cli.output import say
    from udf.ingest.cube_io import read_cube
    from udf.training.adapt import AdaptOptions, adapt, format_trust_report
    from udf.weights import load_checkpoint, save_checkpoint

    cube = read_cube(args.cube)
    base, base_meta = load_checkpoint(args.base)
    opts = AdaptOptions(steps=args.steps, minutes=args.minutes, block=args.block, seed=args.seed, device=args.device)
    bar, progress = _steps_bar(opts.steps, "adapt")
    with bar:
        model, meta = adapt(cube, base, base_meta, opts, progress=progress)
    meta["training_data"]["source"] = str(args.cube)
    save_checkpoint(model, meta, args.out)
    say(format_trust_report(meta["trust_report"]))
    say(f"Wrote adapted checkpoint {args.out} (use it as --model, UDF context 'weights' or export-udf --model)")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    """``s1ndvi pretrain``."""
    from udf.cli.output import say
    from udf.errors import CorpusError
    from udf.training.corpus import load_corpus
    from udf.training.corpus.reserved import describe_reserved, reserved_grids
    from udf.training.loop import pretrain_config
    from udf.training.pretrain import pretrain
    from udf.weights import save_checkpoint

    cfg = pretrain_config(args.seed, args.epochs, args.steps, args.hidden)
    corpus = load_corpus(args.data)
    holdout = tuple(x.strip() for x in args.holdout.split(",")) if args.holdout else ()
    unknown = [x for x in holdout if x not in corpus]
    if unknown:
        raise CorpusError(f"--holdout {unknown}: not a site of the corpus under {args.data} ({sorted(corpus)}).")
    bar, progress = _bar(cfg.epochs, "pretrain")
    with bar:
        model, meta = pretrain(corpus, cfg, holdout=holdout, reserved=describe_reserved(reserved_grids()),
                               progress=progress)
    if args.loso:
        loso = json.loads(Path(args.loso).read_text())
        meta["std_scale"] = _loso_scale(loso, holdout)
        meta["loso_summary"] = loso_summary(loso)
    meta["training_data"]["root"] = str(args.data)
    save_checkpoint(model, meta, args.out)
    say(f"Wrote pretrained checkpoint {args.out} (sites: {', '.join(meta['training_data']['sites'])})")
    return 0


def _loso_scale(loso: dict, holdout: tuple[str, ...]) -> float:
    """The cross-site std scale; for a model without one site, the scale calibrated without that site's fold."""
    if len(holdout) == 1 and holdout[0] in loso["sites"]:
        for row in loso["sites"][holdout[0]]["metrics"].values():
            if "std_scale" in row.get("DL", {}):
                return float(row["DL"]["std_scale"])
    return float(loso["std_scale_cross_site"])


def loso_summary(loso: dict) -> dict:
    """The leave-one-site-out table kept in a checkpoint: MAE, R² and DL coverage per site, protocol and method."""
    keep = ("mae", "r2", "n", "within_1std", "within_2std")
    return {site: {p: {m: {k: v[k] for k in keep if k in v} for m, v in methods.items()}
                   for p, methods in rec["metrics"].items()}
            for site, rec in loso["sites"].items()}
