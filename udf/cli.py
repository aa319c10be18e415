"""The ``s1ndvi`` command line: one parser, sub-commands registered by each package."""

import argparse
import importlib
import logging
import sys
from typing import Sequence

_log = logging.getLogger(__name__)

# Packages that contribute sub-commands through a ``register(subparsers)`` function.
_COMMAND_MODULES = ("udf.commands", "udf.model_commands", "local_backend.cli", "comparison.cli")


def build_parser() -> argparse.ArgumentParser:
    """Build the ``s1ndvi`` argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="s1ndvi", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v INFO, -vv DEBUG)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # the module itself does not exist yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``s1ndvi`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
