"""The ``s1ndvi`` command line: one parser, sub-commands registered by each package, user errors on one line.

Each package's command module has ``register(subparsers)`` and may list the exception types that mean "bad input"
in ``USER_ERRORS``; :func:`main` prints those as ``s1ndvi <command>: error: <message>`` and exits with status 2
(with ``--debug`` or ``-v`` after the traceback). Any other exception is a bug and keeps its traceback.
"""

import argparse
import importlib
import logging
import sys
import traceback
from types import ModuleType
from typing import NoReturn, Sequence

from udf.errors import USER_ERRORS

_log = logging.getLogger(__name__)

__all__ = ["build_parser", "main", "user_errors"]

# Packages that contribute sub-commands through a ``register(subparsers)`` function (and optionally ``USER_ERRORS``).
_COMMAND_MODULES = ("udf.cli.commands", "udf.cli.model_commands", "udf.cli.run", "local_backend.cli", "comparison.cli")

DESCRIPTION = (
    "Gap-free NDVI from Sentinel-1 radar and whatever cloud-free Sentinel-2 exists: build a model cube, train and "
    "apply the fusion model (also as an openEO UDF for any backend), run a local openEO backend, and compare the model "
    "with MOGPR, CropSAR and simple baselines on held-out observations."
)
EPILOG = (
    "Start with `s1ndvi demo --out out/demo` (a few minutes on a laptop). `s1ndvi COMMAND --help` describes a "
    "command. Mistakes in the input end with one line `s1ndvi COMMAND: error: ...` and exit status 2; add --debug "
    "for the traceback."
)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
_OS_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
                                           FileExistsError)


class _Parser(argparse.ArgumentParser):
    """Argument parser whose usage errors are one line, like every other user error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _command_modules() -> list[ModuleType]:
    modules = []
    for name in _COMMAND_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # the module itself does not exist yet
            raise
    return modules


def _add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    if "--debug" in parser._option_string_actions:
        return
    parser.add_argument("-v", "--verbose", action="count", default=default,
                        help="more logging (-v INFO, -vv DEBUG); errors also show their traceback")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the traceback of every error (for bug reports)")


def _complete_commands(parser: argparse.ArgumentParser) -> None:
    """Give every sub-command a description, ``-v``/``--debug`` and its full name as ``command_prog``.

    ``-v``/``--debug`` are then also accepted after the command; the full name is e.g. ``s1ndvi users add``.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                sub.description = sub.description or helps.get(name)
                sub.set_defaults(command_prog=sub.prog)
                _add_global_options(sub, argparse.SUPPRESS)  # SUPPRESS: do not reset what the top level set
                _complete_commands(sub)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``s1ndvi`` argument parser with every available sub-command."""
    parser = _Parser(prog="s1ndvi", description=DESCRIPTION, epilog=EPILOG)
    _add_global_options(parser, 0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _command_modules():
        module.register(sub)
    _complete_commands(parser)
    return parser


def user_errors() -> tuple[type[Exception], ...]:
    """Exception types that mean bad input (files, bands, options): the core's, the OS's and each package's."""
    found = list(USER_ERRORS) + list(_OS_ERRORS)
    for module in _command_modules():
        found += [e for e in getattr(module, "USER_ERRORS", ()) if e not in found]
    return tuple(found)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``s1ndvi`` console script; returns the exit status (2: user error, 130: interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=logging.DEBUG if args.debug else level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    prog = getattr(args, "command_prog", "s1ndvi")
    try:
        result = args.func(args)
    except user_errors() as exc:
        if args.debug or args.verbose:
            traceback.print_exc()
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    return int(result or 0)

