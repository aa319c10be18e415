"""Sub-commands of the comparison harness: ``compare`` and ``demo``; the only place that creates progress bars."""

from __future__ import annotations

import argparse
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

_log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the harness sub-commands to the ``s1ndvi`` parser."""
    p = sub.add_parser("compare", help="DL vs MOGPR vs peers and baselines on the same hidden values of a cube")
    p.add_argument("--cube", required=True, help="truth cube (t, bands[VV, VH, NDVI], y, x), openEO netCDF layout")
    p.add_argument("--dl", default=None, help="DL checkpoint (.npz); default: the shipped weights")
    p.add_argument("--train-dl", type=float, default=None, metavar="MINUTES",
                   help="train a DL model on this cube's training blocks for at most MINUTES instead of --dl")
    p.add_argument("--no-dl", action="store_true", help="skip the DL model")
    p.add_argument("--mogpr", default="local",
                   help="'local' (batched torch), 'gpy' (FuseTS' GPy model, optional), a cloud mogpr_s1_s2 "
                        "netCDF, or 'none'")
    p.add_argument("--mogpr-restarts", type=int, default=3, help="starts per pixel for local MOGPR")
    p.add_argument("--cropsar", default=None, help="CropSAR NDVI netCDF on the cube's grid")
    p.add_argument("--protocol", default="P1,P2,P3", help="comma-separated: P1, P2 (= P2_60,P2_90), P3")
    p.add_argument("--max-pixels", type=int, default=None, help="score a seeded subsample of the test pixels")
    p.add_argument("--block", type=int, default=8, help="spatial hold-out block edge (pixels)")
    p.add_argument("--s1-units", default="auto", choices=["auto", "db", "linear", "uint16_db"])
    p.add_argument("--device", default="cpu", help="torch device for DL and local MOGPR (cpu, cuda)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phenology", action="store_true",
                   help="also compare each method's phenology (SOS/POS/EOS, season counts) with the real S2 series'")
    p.add_argument("--out", required=True, help="output folder (metrics.json, report.md, figures)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("demo", help="main job on the embedded sample: train, evaluate P1-P3 vs MOGPR and baselines, "
                                    "report")
    p.add_argument("--out", default="out/demo", help="output folder")
    p.add_argument("--no-train", action="store_true", help="use the shipped weights instead of training")
    p.add_argument("--minutes", type=float, default=1.5, help="training budget (minutes)")
    p.add_argument("--via", default="auto", choices=["auto", "backend", "udf"],
                   help="run the DL model through the local openEO backend (process graph, stock client), "
                        "or call the UDF directly; auto: the backend when its extra is installed")
    p.add_argument("--field-pixels", type=int, default=24,
                   help="pixels per FuseTS field scored with MOGPR (a seeded subsample)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)


@contextmanager
def _bars() -> Iterator[tuple[Callable[[str], None], Callable[[int, int], None]]]:
    """A step bar (``label``) and a pixel bar (``done, total``) for long fits."""
    steps = tqdm(desc="steps", unit="step", position=0)
    pixels = tqdm(desc="pixels", unit="px", position=1, leave=False)

    def step(label: str) -> None:
        steps.update(1)
        steps.set_postfix_str(label)

    def pixel(done: int, total: int) -> None:
        if pixels.total != total:
            pixels.reset(total=total)
        pixels.n = done
        pixels.refresh()

    try:
        yield step, pixel
    finally:
        pixels.close()
        steps.close()


def cmd_compare(args: argparse.Namespace) -> int:
    """``s1ndvi compare``."""
    from comparison.run_compare import compare_file

    with _bars() as (step, pixel):
        report = compare_file(
            args.cube, Path(args.out), protocols=args.protocol, dl=None if args.no_dl else (args.dl or "shipped"),
            train_minutes=args.train_dl, mogpr=None if args.mogpr == "none" else args.mogpr,
            mogpr_restarts=args.mogpr_restarts, cropsar=args.cropsar, max_pixels=args.max_pixels, block=args.block,
            s1_units=args.s1_units, device=args.device, seed=args.seed, progress=step, pixel_progress=pixel,
            phenology=args.phenology)
    _log.warning("Comparison written: %s", report)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``s1ndvi demo``."""
    from comparison.demo import run_demo

    with _bars() as (step, pixel):
        payload = run_demo(args.out, train=not args.no_train, minutes=args.minutes, seed=args.seed, via=args.via,
                           field_pixels=args.field_pixels, progress=step, pixel_progress=pixel)
    _log.warning("Demo done in %.0f s: see %s/report.md", payload["seconds_total"], args.out)
    return 0
