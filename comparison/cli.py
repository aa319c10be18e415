"""Sub-commands of the comparison harness: ``compare`` and ``demo``; the only place that creates progress bars."""

from __future__ import annotations

import argparse
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from comparison.errors import USER_ERRORS
from udf.cli.output import say
from udf.cli.progress import progress_bar
from udf.preprocess import S1_UNITS
from udf.training.budget import COMPARE_ADAPT_STEPS, DEMO_ADAPT_STEPS

_log = logging.getLogger(__name__)

__all__ = ["USER_ERRORS", "register"]  # USER_ERRORS: the errors `s1ndvi` prints on one line (udf.cli)

MOGPR_ENGINES = ("local", "gpy", "none")


def _mogpr_choice(value: str) -> str:
    """``--mogpr``: an engine name or an existing result file (checked now, not after the other methods ran)."""
    if value in MOGPR_ENGINES or Path(value).is_file():
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} is neither a MOGPR engine ({', '.join(MOGPR_ENGINES)}) nor an existing cloud MOGPR result "
        "file (netCDF from the openEO mogpr_s1_s2 service)")


def _protocol_list(value: str) -> str:
    """``--protocol``: checked with :func:`comparison.compare.core.parse_protocols`, passed on as given."""
    from comparison.compare.core import parse_protocols

    try:
        parse_protocols(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the harness sub-commands to the ``s1ndvi`` parser."""
    p = sub.add_parser("compare", help="DL vs MOGPR vs peers and baselines on the same hidden values of a cube")
    p.add_argument("--cube", required=True, help="truth cube (t, bands[VV, VH, NDVI], y, x), openEO netCDF layout")
    p.add_argument("--dl", default=None, help="DL checkpoint (.npz); default: the shipped weights")
    p.add_argument("--train-dl", type=float, default=None, metavar="MINUTES",
                   help="train a DL model on this cube's training blocks for at most MINUTES instead of --dl")
    p.add_argument("--adapt-steps", type=int, default=COMPARE_ADAPT_STEPS, metavar="STEPS",
                   help="also score the --dl model adapted on this cube's training blocks (s1ndvi adapt, test pixels' "
                        f"NDVI removed) for STEPS optimisation steps (default {COMPARE_ADAPT_STEPS}, about what the former "
                        "3-minute budget ran on a quiet 2-core CPU; seeded, so the same on any machine); 0 skips it")
    p.add_argument("--adapt", type=float, default=None, metavar="MINUTES",
                   help="wall-clock cap of that adaptation (default: none); if it runs out first, training stops "
                        "there with a warning and the result depends on the machine's speed and load; 0 skips it")
    p.add_argument("--no-dl", action="store_true", help="skip the DL model")
    p.add_argument("--mogpr", default="local", type=_mogpr_choice,
                   help="'local' (batched torch, default), 'gpy' (FuseTS' GPy model, optional), a cloud "
                        "mogpr_s1_s2 netCDF file, or 'none'")
    p.add_argument("--mogpr-restarts", type=int, default=3, help="starts per pixel for local MOGPR (default 3)")
    p.add_argument("--cropsar", default=None, help="CropSAR NDVI netCDF on the cube's grid (scored as in-sample)")
    p.add_argument("--protocol", default="P1,P2,P3", type=_protocol_list,
                   help="comma-separated: P1 (20 %% hidden at random), P2 (= P2_60,P2_90: 60/90-day gap), "
                        "P3 (S1 only), P3S (S1 only on alternate --checker-block blocks, S2 kept on the others), "
                        "P3C (one land cover clouded: one scenario per class); default P1,P2,P3")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="score a seeded subsample of at most this many test pixels (default: all)")
    p.add_argument("--block", type=int, default=8, help="spatial hold-out block edge (pixels, default 8)")
    p.add_argument("--s1-units", default="auto", choices=list(S1_UNITS),
                   help="encoding of the cube's S1 values (default auto: decided from dtype and range)")
    p.add_argument("--device", default="cpu", help="torch device for DL and local MOGPR (cpu, cuda)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, subsample and hidden values (default 0)")
    p.add_argument("--classes", default="auto",
                   help="land-cover classes for P3C and the per-class scores: auto (the embedded WorldCereal labels "
                        "where the cube lies on them, else S1 clusters), labels, clusters, or a WorldCereal "
                        "OUTPUT_POLY label file (default auto)")
    p.add_argument("--clusters", type=int, default=4, metavar="K",
                   help="k of the seeded k-means of S1 signatures used where no labels exist (default 4)")
    p.add_argument("--class-min-size", type=int, default=20,
                   help="fewest pixels with NDVI for a class to get its own P3C scenario (default 20)")
    p.add_argument("--checker-block", type=int, default=8,
                   help="P3S block edge in pixels: NDVI hidden on alternate blocks (default 8)")
    p.add_argument("--phenology", action="store_true",
                   help="also compare each method's phenology (SOS/POS/EOS, season counts) with the real S2 series'")
    p.add_argument("--out", required=True, help="output folder (metrics.json, report.md, figures)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("loso", help="leave-one-site-out evaluation of the pretrained model on the corpus",
                       description="For each site of the corpus, pretrain on all other sites and score the held-out "
                                   "site against linear interpolation, Whittaker and MOGPR (P1, P2_60, P2_90, P3); "
                                   "calibrate the std across sites. Writes loso.json, loso.md and loso.png.")
    p.add_argument("--data", required=True, help="corpus folder (holding multisite/, worldcereal_monthly/ ...)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--sites", default=None,
                   help="comma-separated sites to hold out (default: every site); folds are saved in --out, so several "
                        "processes with different --sites can share one --out and the report covers every fold there")
    p.add_argument("--no-mogpr", action="store_true", help="skip MOGPR (the slow part)")
    p.add_argument("--max-sequences", type=int, default=300, help="scored sequences per held-out set (seeded)")
    p.add_argument("--epochs", type=int, default=None, help="most pretraining epochs per fold")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps per epoch")
    p.add_argument("--seed", type=int, default=0, help="seed of training, subsamples and protocols")
    p.add_argument("--save-models", action="store_true", help="also save each fold's model as OUT/without_<site>.npz")
    p.add_argument("--protocol", default=None,
                   help="P3S and/or P3C: score the shift scenarios (S2 kept on alternate blocks; one land cover "
                        "clouded) with each site's fold model from --models instead of the standard table")
    p.add_argument("--models", default=None,
                   help="folder of fold models without_<site>.npz (from --save-models) for --protocol P3S,P3C; "
                        "flanders_2017 falls back to the embedded fold model")
    p.add_argument("--pretrain", action="store_true",
                   help="with --protocol P3S,P3C: pretrain (and save in --out) the fold models missing from --models")
    p.add_argument("--checker-block", type=int, default=8, help="P3S block edge in pixels (default 8)")
    p.add_argument("--class-min-size", type=int, default=20,
                   help="fewest sequences of a class for its own P3C scenario (default 20)")
    p.add_argument("--clusters", type=int, default=4, metavar="K",
                   help="k of the S1 k-means for gridded sets without labels (default 4)")
    p.set_defaults(func=cmd_loso)

    from comparison.phenology.eval_cli import register_phenology_eval

    register_phenology_eval(sub)

    p = sub.add_parser("demo", help="main job on the embedded sample: zero-shot and adapted model vs MOGPR and "
                                    "baselines on held-out pixels, phenology, report")
    p.add_argument("--out", default="out/demo", help="output folder")
    p.add_argument("--adapt-steps", type=int, default=DEMO_ADAPT_STEPS,
                   help="optimisation steps of `s1ndvi adapt` on the sample's training blocks (default "
                        f"{DEMO_ADAPT_STEPS}: the 195 epochs the former 1.5-minute budget ran on a quiet 2-core CPU; "
                        "seeded, so the same numbers on any machine); 0: zero-shot only")
    p.add_argument("--adapt-minutes", type=float, default=None,
                   help="wall-clock cap of that adaptation (default: none); if it runs out first, training stops "
                        "there with a warning and the numbers depend on the machine's load; 0: zero-shot only")
    p.add_argument("--via", default="auto", choices=["auto", "backend", "udf"],
                   help="run the DL model through the local openEO backend (process graph, stock client), "
                        "or call the UDF directly; auto: the backend when its extra is installed")
    p.add_argument("--field-pixels", type=int, default=6,
                   help="pixels per FuseTS field scored with MOGPR (a seeded subsample)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, subsample, hidden values and training")
    p.set_defaults(func=cmd_demo)


@contextmanager
def _bars() -> Iterator[tuple[Callable[[str], None], Callable[[int, int], None]]]:
    """One progress bar: a step per finished stage (``label``), long fits' pixels (``done, total``) in its text."""
    steps = progress_bar(desc="steps", unit="step", dynamic_ncols=True)
    state = {"label": ""}

    def step(label: str) -> None:
        state["label"] = label
        steps.update(1)
        steps.set_postfix_str(label)

    def pixel(done: int, total: int) -> None:
        steps.set_postfix_str(f"{state['label']} | MOGPR {done}/{total} px")

    try:
        yield step, pixel
    finally:
        steps.close()


def cmd_compare(args: argparse.Namespace) -> int:
    """``s1ndvi compare``."""
    from comparison.compare.run import compare_file

    with _bars() as (step, pixel):
        report = compare_file(
            args.cube, Path(args.out), protocols=args.protocol, dl=None if args.no_dl else (args.dl or "shipped"),
            train_minutes=args.train_dl, adapt_steps=0 if args.adapt == 0 else args.adapt_steps,
            adapt_minutes=args.adapt,
            mogpr=None if args.mogpr == "none" else args.mogpr,
            mogpr_restarts=args.mogpr_restarts, cropsar=args.cropsar, max_pixels=args.max_pixels, block=args.block,
            s1_units=args.s1_units, device=args.device, seed=args.seed, progress=step, pixel_progress=pixel,
            phenology=args.phenology, classes=args.classes, clusters=args.clusters,
            class_min_size=args.class_min_size, checker_block=args.checker_block)
    say(f"Wrote {report} (read it first), metrics.json and the figures it links in {report.parent}")
    return 0


def cmd_loso(args: argparse.Namespace) -> int:
    """``s1ndvi loso``."""
    from comparison.loso.report import write_loso
    from comparison.loso.run import LosoOptions, run_loso
    from udf.errors import CorpusError
    from udf.training.corpus import load_corpus
    from udf.training.corpus.reserved import describe_reserved, reserved_grids
    from udf.training.loop import pretrain_config

    cfg = pretrain_config(args.seed, args.epochs, args.steps)
    corpus = load_corpus(args.data)
    sites = tuple(s.strip() for s in args.sites.split(",")) if args.sites else None
    unknown = [s for s in sites or () if s not in corpus]
    if unknown:
        raise CorpusError(f"Unknown or unavailable site(s) {unknown}; the corpus under {args.data} has {sorted(corpus)}.")
    if args.protocol:
        return _loso_shift(args, corpus, sites, cfg)
    opts = LosoOptions(train=cfg, mogpr=not args.no_mogpr, max_sequences=args.max_sequences, seed=args.seed,
                       models_dir=args.out if args.save_models else None)
    with progress_bar(total=len(sites or corpus), desc="folds", unit="site") as bar:
        def step(label: str) -> None:
            bar.update(1)
            bar.set_postfix_str(label)

        payload = run_loso(corpus, opts, sites=sites, progress=step, reserved=describe_reserved(reserved_grids()),
                           folder=Path(args.out))
    path = write_loso(payload, Path(args.out))
    say(f"Wrote {path}, {Path(args.out) / 'loso.json'} and loso.png")
    return 0


def _loso_shift(args: argparse.Namespace, corpus: dict, sites: tuple[str, ...] | None, cfg: object) -> int:
    """``s1ndvi loso --protocol P3S,P3C``: the shift scenarios with the saved fold models."""
    from comparison.loso.shift import ShiftLosoOptions, run_shift_loso

    protocols = tuple(p.strip().upper() for p in args.protocol.split(",") if p.strip())
    bad = [p for p in protocols if p not in ("P3S", "P3C")]
    if bad or not protocols:
        raise ValueError(f"s1ndvi loso --protocol takes P3S and/or P3C (got {args.protocol!r}); the standard "
                         "protocols (P1, P2, P3) run without --protocol.")
    opts = ShiftLosoOptions(protocols=protocols, checker_block=args.checker_block,
                            class_min_size=args.class_min_size, clusters=args.clusters, seed=args.seed)
    with progress_bar(total=len(sites or corpus), desc="folds", unit="site") as bar:
        def step(label: str) -> None:
            bar.update(1)
            bar.set_postfix_str(label)

        path = run_shift_loso(corpus, opts, Path(args.out), data=Path(args.data),
                              models=Path(args.models) if args.models else None, sites=sites, progress=step,
                              pretrain_cfg=cfg if args.pretrain else None)  # type: ignore[arg-type]
    say(f"Wrote {path} and {path.with_suffix('.json')}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``s1ndvi demo``."""
    from comparison.demo import run_demo

    with _bars() as (step, pixel):
        payload = run_demo(args.out, adapt_steps=args.adapt_steps, adapt_minutes=args.adapt_minutes, seed=args.seed,
                           via=args.via, field_pixels=args.field_pixels, progress=step, pixel_progress=pixel)
    out = Path(args.out)
    written = sorted(p.name for p in out.iterdir() if p.is_file())
    say(f"Demo done in {payload['seconds_total']:.0f} s. Wrote in {out}: {', '.join(written)}. "
        f"Read {out / 'report.md'} first.")
    return 0
