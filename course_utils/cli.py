"""The command line: ``python -m course_utils doctor|providers|build|export|...``.

Covers: argument parsing, and the kinds of failure: an expected one (a
:class:`~course_utils.errors.CourseError`: a missing file, a bad argument, an
option's value out of its range (``options.py``), a tool that is not installed)
prints one ``error: ...`` line and exits 1; argparse's own refusals (an unknown
option) end with one ``error:`` line too and exit 2; a ``SystemExit`` raised by
code a command ran (a model's factory or forward) is one ``error:`` line and exit 1,
never a silent exit; any other exception is a bug in the course package and is
shown with its traceback (exit 1 too), so that it can be reported. Does not
cover: the work itself; each subcommand lives in the module that owns its concern
and registers itself through ``add_cli``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from .errors import CourseError

# (module, subcommand) pairs, in the order ``--help`` lists them.
_COMMAND_MODULES = [
    ("install", "doctor"),
    ("providers", "providers"),
    ("build", "build"),
    ("export", "export"),
    ("verify", "verify"),
    ("inspection", "inspect"),
    ("netron_view", "netron"),
    ("web_runtime", "web-runtime"),
    ("benchmark", "bench"),
    ("selfcheck", "selfcheck"),
    ("grading", "grade"),
    ("release", "release"),
    ("nbgrader_export", "export-nbgrader"),
]


def _unavailable(command: str, error: BaseException):
    """A stand-in for a subcommand whose module could not be imported (a broken install)."""
    def run(args) -> int:
        print(f"error: '{command}' cannot run here: {type(error).__name__}: {error}. "
              "Run `python -m course_utils doctor` and apply the fix it prints "
              "(or `make setup`).", file=sys.stderr)
        return 1
    return run


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose own refusals (an unknown option, a missing argument) end with
    one ``error:`` line too; exit 2 as argparse's always do."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand (each module's ``add_cli``), as ``main`` uses it."""
    parser = _Parser(
        prog="python -m course_utils",
        description="Helpers for the ONNX model-packaging course.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of expected errors too (bugs always show one)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"course_utils.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"course_utils.{name}":
                continue  # left out of this copy (the student release has no grader)
            module, broken = None, error
        except Exception as error:  # a broken dependency (numpy, onnx...) must not hide `doctor`
            module, broken = None, error
        if module is None:
            stand_in = sub.add_parser(command, help=f"(unavailable: {type(broken).__name__})",
                                      add_help=False)
            stand_in.set_defaults(func=_unavailable(command, broken), stand_in=True)
        elif hasattr(module, "add_cli"):
            module.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status."""
    parser = build_parser()
    try:  # an option's type refuses a value with a CourseError (options.py)
        args, extra = parser.parse_known_args(argv)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if extra and not getattr(args, "stand_in", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
    except CourseError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print(f"\nThis is a bug in course_utils, not something you did wrong: please report "
              f"the traceback above together with the command "
              f"(python -m course_utils {' '.join(argv if argv is not None else sys.argv[1:])}).",
              file=sys.stderr)
        return 1
    except BaseException as error:  # SystemExit & co: the package never raises them, code it ran did
        return _foreign_exit(error)


def _foreign_exit(error: BaseException) -> int:
    """One line for a ``SystemExit`` (or another ``BaseException``) raised by code a command ran,
    such as a model's factory or forward: without it the command would end silently with that
    code's exit status (0 too), its work not done."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    print(f"error: the command stopped: code it ran raised {type(error).__name__}"
          f"({', '.join(map(repr, error.args))}){where}, e.g. a model's factory or forward calling "
          "sys.exit() or exit(); the command's work was not done: remove that call and run it again",
          file=sys.stderr)
    return 1
