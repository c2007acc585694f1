"""One door for the numbers the command line takes: each option's argparse type checks its range.

Covers: :func:`add_number`, which adds a numeric option whose argparse type refuses
what is not a finite number within the option's range (stated in ``--help``), and
:func:`number_list`, the type of an option that takes a comma list of them (a shape,
batch sizes), and :func:`path_arg`, the type of every path argument (an empty
one is refused; ``paths.py`` checks the rest). A refusal is an :class:`OptionError`: a
:class:`~course_utils.errors.CourseError` that is deliberately not a ``ValueError``,
so that argparse lets it through instead of printing its own message, and the CLI
prints it as its one ``error:`` line (exit 1) like every other refusal. Standard
library only. Does not cover: what the command then does with the value, nor paths
(``paths.py``).
"""
from __future__ import annotations

import math

from .errors import CourseError

__all__ = ["OptionError", "add_number", "number", "number_list", "range_words", "path_arg"]


class OptionError(CourseError):
    """An option's value the command cannot use; the message names the option and its range."""


def range_words(kind: type, low, high) -> str:
    """``"a whole number from 1 to 86400"``, ``"a finite number >= 0"``..."""
    noun = "a whole number" if kind is int else "a finite number"
    low, high = (None if v is None else f"{v:,}" if kind is int else f"{v:g}" for v in (low, high))
    if low is not None and high is not None:
        return f"{noun} from {low} to {high}"
    if low is not None:
        return f"{noun} >= {low}"
    return f"{noun} <= {high}" if high is not None else noun


def _convert(text: str, kind: type):
    """``text`` as an int or a finite float, or None."""
    try:
        value = kind(str(text).strip())
    except (ValueError, OverflowError):  # also the int-string limit of huge numbers
        return None
    return value if kind is int or math.isfinite(value) else None


def number(option: str, kind: type = int, low=None, high=None, *, default=None, note: str = ""):
    """The argparse type of a numeric option: ``kind`` within [``low``, ``high``].

    Args:
        option: the option as typed, e.g. ``"--budget"`` (for messages).
        kind: ``int`` or ``float`` (floats must be finite: NaN and infinity are refused).
        low, high: the range, both ends included; None for an open end.
        default: the value used when the option is left out (named in messages).
        note: why the range is what it is, e.g. ``"4 per logical CPU of this machine"``.

    Example:
        >>> parse = number("--jobs", int, 1, 8)
        >>> parse("2")
        2
    """
    words = range_words(kind, low, high) + (f" ({note})" if note else "")
    leave_out = f"; leave it out for the default, {default:g}" if default is not None else ""

    def parse(text: str):
        value = _convert(text, kind)
        if value is None or (low is not None and value < low) or (high is not None and value > high):
            raise OptionError(f"{option} must be {words}, got {str(text)[:40]!r}{leave_out}")
        return value

    parse.__name__ = kind.__name__  # what argparse names in its own messages
    return parse


def add_number(parser, option: str, *, kind: type = int, low=None, high=None, default=None,
               help: str, metavar: str | None = None, note: str = ""):  # noqa: A002 (argparse's word)
    """Add ``option`` to ``parser`` with a checked numeric type and its range in the help.

    Example:
        >>> add_number(parser, "--timeout", low=1, high=86400, default=120, metavar="S",
        ...            help="seconds per cell")  # doctest: +SKIP
    """
    text = f"{help}; {range_words(kind, low, high)}" + (f", {note}" if note else "")
    if default is not None:
        text += f" (default {default:g})"
    return parser.add_argument(option, type=number(option, kind, low, high, default=default,
                                                   note=note),
                               default=default, metavar=metavar, help=text.replace("%", "%%"))


def number_list(option: str, low: int, high: int, *, example: str, hint: str = ""):
    """The argparse type of an option that takes whole numbers separated by commas (or ``x``).

    Args:
        option: the option as typed, for messages.
        low, high: the range of each number.
        example: a valid value, e.g. ``"3,224,224"``.
        hint: what to do instead, e.g. ``"choose smaller batch sizes"``.

    Example:
        >>> number_list("--input-shape", 1, 2**31 - 1, example="3,224,224")("3x64x64")
        (3, 64, 64)
    """
    def parse(text: str):
        parts = [p.strip() for p in str(text).replace("x", ",").split(",")]
        values = [_convert(p, int) for p in parts if p]
        if not values or None in values or not all(low <= v <= high for v in values):
            more = f"; {hint}" if hint else ""
            raise OptionError(f"{option} must be whole numbers from {low:,} to {high:,} separated "
                              f"by commas, e.g. {example}, got {str(text)[:60]!r}{more}")
        return tuple(values)

    parse.__name__ = "list"
    return parse


def path_arg(name: str):
    """The argparse type of a path argument: refuses an empty one (which would mean the current
    folder to most functions); what the path names is checked by ``paths.py`` when it is used."""
    def parse(text: str) -> str:
        if not str(text).strip():
            raise OptionError(f"{name} is empty; give the path of a file or folder")
        return text

    parse.__name__ = "path"
    return parse
