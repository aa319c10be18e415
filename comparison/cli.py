"""Sub-commands of the comparison harness: ``demo`` (and ``compare``)."""

import argparse
import logging

from tqdm import tqdm

_log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the harness sub-commands to the ``s1ndvi`` parser."""
    p = sub.add_parser("demo", help="main job on the embedded sample: train, evaluate P1-P3 vs baselines, report")
    p.add_argument("--out", default="out/demo", help="output folder")
    p.add_argument("--no-train", action="store_true", help="use the shipped weights instead of training")
    p.add_argument("--minutes", type=float, default=2.0, help="training budget (minutes)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """``s1ndvi demo``."""
    from comparison.demo import run_demo

    with tqdm(desc="demo", unit="step") as bar:
        def progress(label: str) -> None:
            bar.update(1)
            bar.set_postfix_str(label)

        payload = run_demo(args.out, train=not args.no_train, minutes=args.minutes, seed=args.seed, progress=progress)
    _log.warning("Demo done in %.0f s: see %s/report.md", payload["seconds_total"], args.out)
    return 0
