"""The exercise header line: ``# Exercise NN.M (P points): what to do``.

Covers: finding the header lines in a cell's source (the task joined with its
continuation lines), the exercise a cell belongs to. Used by the build, the grader
and ``selfcheck`` alike (this module ships to students; ``build.py`` does not).
Does not cover: solution markers or building notebooks (``build.py``).
"""
from __future__ import annotations

import re

__all__ = ["exercise_header", "exercise_in", "headers_in"]

_HEADER = re.compile(r"^\s*#\s*Exercise\s+(\d{2}\.\d+)\s*\((\d+)\s*points?\)\s*:\s*(.+?)\s*$")
# A long task wraps onto the comment lines right after the header, indented two spaces
# or more: "#   to artifacts/x.onnx; store the path in `path`".
_CONTINUATION = re.compile(r"^\s*#\s{2,}(\S.*?)\s*$")


def headers_in(source: str) -> list[tuple[str, str, str]]:
    """(id, points, task) of every header line, the task joined with its continuation lines."""
    lines = source.splitlines()
    found = []
    for index, line in enumerate(lines):
        match = _HEADER.match(line)
        if not match:
            continue
        exercise_id, points, task = match.groups()
        for following in lines[index + 1:]:
            more = _CONTINUATION.match(following)
            if not more or _HEADER.match(following):
                break
            task += " " + more.group(1)
        found.append((exercise_id, points, task))
    return found


def exercise_in(source: str) -> str | None:
    """The id of the first ``# Exercise NN.M (P points): ...`` header in a cell's source, or None."""
    for line in source.splitlines():
        match = _HEADER.match(line)
        if match:
            return match.group(1)
    return None


def exercise_header(source: str) -> tuple[str, int, str] | None:
    """``(id, points, task)`` of the first exercise header in a cell's source, or None."""
    headers = headers_in(source)
    return (headers[0][0], int(headers[0][1]), headers[0][2]) if headers else None
