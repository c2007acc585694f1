"""The base class of failures a student can fix.

Covers: :class:`CourseError`, raised (through a subclass or directly) for
expected failures: a missing file, a bad argument, a tool that is not
installed. The CLI prints these as one ``error: ...`` line and exits 1; any
other exception is a bug in the course package and is shown with its
traceback. Does not cover: the failures themselves (each module raises its own).
"""
from __future__ import annotations

__all__ = ["CourseError", "InvalidArgumentError", "MissingFileError", "MissingDependencyError"]


class CourseError(Exception):
    """An expected failure whose message says what was wrong and the next step.

    Subclasses also keep a builtin base (``class ExportError(CourseError,
    RuntimeError)``), so code that catches the builtin keeps working.
    """


class InvalidArgumentError(CourseError, ValueError):
    """An argument the function cannot use; the message lists what it accepts."""


class MissingFileError(CourseError, FileNotFoundError):
    """A file (or a file it needs beside it) is not where it should be."""


class MissingDependencyError(CourseError, ImportError):
    """A package or program the task needs is not installed; the message says how to get it."""
