"""The command line: ``python -m course_utils doctor|providers|build|export|...``.

Covers: argument parsing and turning expected errors into one clear line and
a non-zero exit. Does not cover: the work itself; each subcommand lives in the
module that owns its concern and registers itself through ``add_cli``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Modules that contribute a subcommand, in the order ``--help`` lists them.
_COMMAND_MODULES = [
    "install",      # doctor
    "providers",    # providers
    "build",        # build
    "export",       # export
    "verify",       # verify
    "inspection",   # inspect
    "netron_view",  # netron
    "benchmark",    # bench
    "grading",      # grade
    "release",      # release
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils",
        description="Helpers for the ONNX model-packaging course.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"course_utils.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"course_utils.{name}":
                continue  # a module not written yet contributes nothing
            raise
        if hasattr(module, "add_cli"):
            module.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logger = logging.getLogger("course_utils")
    if not logging.getLogger().handlers and not logger.handlers:
        # Our own messages only: other libraries' INFO chatter stays quiet.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, OSError, RuntimeError, ImportError) as error:
        if args.debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 1
