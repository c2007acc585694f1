"""The exercise header line: ``# Exercise NN.M (P points): what to do``.

Covers: finding the header lines in a cell's source (the task joined with its
continuation lines), the exercise a cell belongs to. Used by the build, the grader
and ``selfcheck`` alike (this module ships to students; ``build.py`` does not).
Does not cover: solution markers or building notebooks (``build.py``).
"""
from __future__ import annotations

import re

__all__ = ["exercise_header", "exercise_in", "headers_in"]

# Every pattern here runs on students' cells: none may backtrack more than linearly on a long
# line. The task is whatever follows the colon, stripped in Python (a lazy group followed by
# an optional run of spaces is quadratic on a line full of spaces).
_HEADER = re.compile(r"\s*#\s*Exercise\s+(\d{2}\.\d+)\s*\((\d+)\s*points?\)\s*:")
# A long task wraps onto the comment lines right after the header, indented two spaces
# or more: "#   to artifacts/x.onnx; store the path in `path`".
_CONTINUATION = re.compile(r"\s*#\s{2}")


def _header(line: str):
    """(id, points, task) of a header line, or None (the task must not be empty)."""
    match = _HEADER.match(line)
    task = line[match.end():].strip() if match else ""
    return (match.group(1), match.group(2), task) if task else None


def _continuation(line: str) -> str | None:
    match = _CONTINUATION.match(line)
    more = line[match.end():].strip() if match else ""
    return more or None


def headers_in(source: str) -> list[tuple[str, str, str]]:
    """(id, points, task) of every header line, the task joined with its continuation lines."""
    lines = source.splitlines()
    found = []
    for index, line in enumerate(lines):
        header = _header(line)
        if not header:
            continue
        exercise_id, points, task = header
        for following in lines[index + 1:]:
            more = _continuation(following)
            if more is None or _header(following):
                break
            task += " " + more
        found.append((exercise_id, points, task))
    return found


def exercise_in(source: str) -> str | None:
    """The id of the first ``# Exercise NN.M (P points): ...`` header in a cell's source, or None."""
    for line in source.splitlines():
        header = _header(line)
        if header:
            return header[0]
    return None


def exercise_header(source: str) -> tuple[str, int, str] | None:
    """``(id, points, task)`` of the first exercise header in a cell's source, or None."""
    headers = headers_in(source)
    return (headers[0][0], int(headers[0][1]), headers[0][2]) if headers else None
