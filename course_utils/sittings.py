"""How long a notebook takes, and sittings of at most 90 minutes.

Covers: the time rule (:func:`sitting_times`), the parts a notebook is cut into
(:func:`find_parts`), the limit of one sitting (:func:`check_sittings`,
:data:`NOT_YET_CUT`) and the one generated time line at the top of a notebook and
of each part (:func:`set_time_lines`). Does not cover: building or executing
notebooks (``build.py``, which records each cell's run time), nor the README's
tables (``readme_tables.py``).

The rule, for each part: **reading** (:data:`WORDS_PER_MINUTE` words of prose and
:data:`CODE_LINES_PER_MINUTE` non-blank lines of code a minute, counted on the
student notebook, the time lines themselves left out) + **running** (the seconds
its cells took when the build executed the solutions) + **solving**
(:data:`MINUTES_PER_POINT` minutes per exercise point), rounded up to a multiple
of 5 minutes. The allowance per point was calibrated on what students measured
(the README gives the numbers).

A notebook of several parts (sittings) marks each part with a markdown cell whose
first line is ``## Part K of N: title``, K from 1 to N in order; the cells before
the first marker belong to part 1. A part may take at most
:data:`MAX_SITTING_MINUTES`; each part after the first starts with a checkpoint,
so that a student can start it the next day without running the parts before.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import CourseError

__all__ = ["find_parts", "sitting_times", "check_sittings", "set_time_lines", "notebook_time_line",
           "part_time_line", "is_time_line", "Part", "SittingTime", "SittingMarkerError",
           "SittingTooLongError", "WORDS_PER_MINUTE", "CODE_LINES_PER_MINUTE", "MINUTES_PER_POINT",
           "MAX_SITTING_MINUTES", "NOT_YET_CUT"]

WORDS_PER_MINUTE = 150
CODE_LINES_PER_MINUTE = 10
#: Calibrated on students' measured times of notebooks 02, 03 and 04 (see the README).
MINUTES_PER_POINT = 5
MAX_SITTING_MINUTES = 90
_ROUND_TO = 5

#: Notebooks that take more than one sitting and are not cut into parts yet. The build
#: and the tests let them pass; remove a notebook from this set once it is cut (a test
#: fails while a notebook listed here fits one sitting).
NOT_YET_CUT: frozenset = frozenset()  # every notebook is cut today

_MARKER = re.compile(r"^##\s+Part\s+(\d+)\s+of\s+(\d+)\s*:\s*(\S.*?)\s*$")
# Anything a reader would take for a part marker: a heading that starts "Part <number>".
_LOOKS_LIKE_MARKER = re.compile(r"^\s*#{1,6}\s*part\s+\d+", re.IGNORECASE)
_TIME_LINE = re.compile(r"^\*Time\b.*\*\s*$")


class SittingMarkerError(CourseError, ValueError):
    """A part marker or a time line that the build cannot use; the message names the cell."""


class SittingTooLongError(CourseError, ValueError):
    """A part (sitting) of a notebook takes more than :data:`MAX_SITTING_MINUTES`."""


@dataclass(frozen=True)
class Part:
    """One sitting of a notebook: cells ``start`` up to the next part's start."""

    number: int
    of: int
    title: str          # "" for a notebook of one part
    start: int          # index of its first cell
    marker: int | None  # index of its marker cell (None in a notebook of one part)


@dataclass(frozen=True)
class SittingTime:
    """The time rule's figures for one part."""

    part: Part
    words: int
    code_lines: int
    points: int
    run_seconds: float | None  # None: not measured (the solutions were not executed)

    @property
    def reading_minutes(self) -> float:
        return self.words / WORDS_PER_MINUTE + self.code_lines / CODE_LINES_PER_MINUTE

    @property
    def run_minutes(self) -> float:
        return (self.run_seconds or 0.0) / 60

    @property
    def solving_minutes(self) -> float:
        return self.points * MINUTES_PER_POINT

    @property
    def minutes(self) -> float:
        return self.reading_minutes + self.run_minutes + self.solving_minutes

    @property
    def stated(self) -> int:
        """The minutes a notebook states: the estimate rounded up to a multiple of 5."""
        return _ROUND_TO * math.ceil(round(self.minutes, 6) / _ROUND_TO)


def is_time_line(line: str) -> bool:
    """True for the generated time line (``*Time...*``, a line of its own)."""
    return bool(_TIME_LINE.match(line))


def find_parts(nb, name: str = "notebook") -> list[Part]:
    """The parts of a notebook, every marker validated.

    Raises:
        SittingMarkerError: a heading that looks like a marker but is not one, a marker
            that is not its cell's first line, parts numbered out of order, a different
            N, or a notebook of one part with a marker; the message names the cell.

    Example:
        >>> import nbformat
        >>> cells = [nbformat.v4.new_markdown_cell(s) for s in ("# T", "## Part 1 of 2: a", "## Part 2 of 2: b")]
        >>> [(p.number, p.title, p.start) for p in find_parts(nbformat.v4.new_notebook(cells=cells))]
        [(1, 'a', 0), (2, 'b', 2)]
    """
    markers = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        where = f"{name}, cell {index + 1}"
        for number, line in enumerate(cell.source.splitlines(), start=1):
            if not _LOOKS_LIKE_MARKER.match(line):
                continue
            found = _MARKER.match(line)
            if not found:
                raise SittingMarkerError(f"{where}: {line.strip()[:80]!r} is not a part marker; write "
                                         "it as '## Part K of N: title' (a level-2 heading, the part's "
                                         "number, the number of parts and its title)")
            if number != 1:
                raise SittingMarkerError(f"{where}: the part marker {line.strip()[:80]!r} is on line "
                                         f"{number}; it must be the first line of its markdown cell "
                                         "(split the cell there)")
            markers.append((index, int(found.group(1)), int(found.group(2)), found.group(3)))
    if not markers:
        return [Part(1, 1, "", 0, None)]
    first_index, _, parts_count, _ = markers[0]
    if first_index == 0:
        raise SittingMarkerError(f"{name}, cell 1: a part marker in the title cell; the title cell "
                                 "states the whole notebook's time, so put '## Part 1 of N: title' "
                                 "in a markdown cell of its own after it")
    for position, (index, k, of, _) in enumerate(markers, start=1):
        where = f"{name}, cell {index + 1}"
        if of != parts_count:
            raise SittingMarkerError(f"{where}: 'Part {k} of {of}' but cell {first_index + 1} says "
                                     f"of {parts_count}; every marker gives the same number of parts")
        if k != position:
            raise SittingMarkerError(f"{where}: 'Part {k} of {of}' where part {position} comes next; "
                                     f"number the parts 1 to {of} in the order they appear")
    if parts_count != len(markers) or parts_count < 2:
        if parts_count < 2:
            raise SittingMarkerError(f"{name}, cell {first_index + 1}: 'Part 1 of 1'; a notebook of "
                                     "one sitting needs no part marker, remove it")
        raise SittingMarkerError(f"{name}: the markers say {parts_count} parts but the notebook has "
                                 f"{len(markers)} (cells {', '.join(str(m[0] + 1) for m in markers)}); "
                                 f"add the missing '## Part K of {parts_count}: title' cells or "
                                 "change N")
    return [Part(k, of, title, 0 if k == 1 else index, index) for index, k, of, title in markers]


def _ranges(parts: list[Part], cells: int) -> list[range]:
    ends = [p.start for p in parts[1:]] + [cells]
    return [range(p.start, end) for p, end in zip(parts, ends)]


def sitting_times(source_nb, student_nb, exercises, cell_seconds, name: str = "notebook") -> list[SittingTime]:
    """The time rule's figures for each part of a notebook.

    Args:
        source_nb: the source notebook (its cells line up with the solutions').
        student_nb: its student build, on which reading is counted.
        exercises: the source's exercises (``cell_index``, ``points``), e.g. from
            ``build.parse_exercises``.
        cell_seconds: each solutions cell's run time in seconds (None for markdown
            cells), as the build records it; None when not measured.
        name: the notebook's name, for messages.

    Returns:
        One :class:`SittingTime` per part, in order.
    """
    parts, student_parts = find_parts(source_nb, name), find_parts(student_nb, name)
    if cell_seconds is not None and len(cell_seconds) != len(source_nb.cells):
        cell_seconds = None  # recorded for another version of the notebook
    times = []
    for part, cells, student_cells in zip(parts, _ranges(parts, len(source_nb.cells)),
                                          _ranges(student_parts, len(student_nb.cells))):
        words = code_lines = 0
        for cell in (student_nb.cells[i] for i in student_cells):
            lines = [line for line in cell.source.splitlines() if not is_time_line(line)]
            if cell.cell_type == "markdown":
                words += sum(len(line.split()) for line in lines)
            elif cell.cell_type == "code":
                code_lines += sum(1 for line in lines if line.strip())
        points = sum(e.points for e in exercises if e.cell_index in cells)
        run = (None if cell_seconds is None
               else sum(float(cell_seconds[i] or 0) for i in cells))
        times.append(SittingTime(part, words, code_lines, points, run))
    return times


def check_sittings(times: list[SittingTime], name: str, exempt=NOT_YET_CUT) -> list[SittingTime]:
    """The parts over :data:`MAX_SITTING_MINUTES`; an error unless the notebook is exempt.

    Raises:
        SittingTooLongError: a part is too long and ``name`` is not in ``exempt``; the
            message names each such part with its reading, run and solving minutes.
    """
    long = [t for t in times if t.minutes > MAX_SITTING_MINUTES]
    if long and name not in exempt:
        raise SittingTooLongError(
            "; ".join(f"{_which(name, t.part)} takes about {t.stated} minutes, more than one "
                      f"sitting of {MAX_SITTING_MINUTES} ({_figures(t)})" for t in long)
            + ". Cut it into parts: a markdown cell whose first line is '## Part K of N: title' "
              "starts each part, and each later part begins with a checkpoint that reloads (or "
              "rebuilds) what it needs; or move exercises to another part")
    return long


def _which(name: str, part: Part) -> str:
    if part.of == 1:
        return name
    return f"{name}, part {part.number} of {part.of} ({part.title!r}, from cell {part.start + 1})"


def _figures(t: SittingTime) -> str:
    run = "not measured" if t.run_seconds is None else f"{t.run_minutes:.1f}"
    return (f"reading {t.reading_minutes:.1f} minutes, running {run}, solving {t.solving_minutes:.0f} "
            f"for {t.points} points at {MINUTES_PER_POINT} minutes each")


def _minutes(value: float) -> str:
    return "under a minute" if value < 0.5 else f"{value:.0f}"


def part_time_line(t: SittingTime, *, of_part: bool) -> str:
    """The time line of one part (``of_part``: at the top of a part, else of a notebook)."""
    what = "Time for this part" if of_part else "Time"
    run = ("the cells' run time not measured yet" if t.run_seconds is None
           else f"{_minutes(t.run_minutes)} for the cells to run")
    solve = (f"{t.solving_minutes:.0f} to solve the exercises ({t.points} points at "
             f"{MINUTES_PER_POINT} minutes each)" if t.points else "no exercise to solve")
    return f"*{what}: about {t.stated} minutes: {_minutes(t.reading_minutes)} to read, {run}, {solve}.*"


def notebook_time_line(times: list[SittingTime]) -> str:
    """The time line at the top of a notebook: its one part's figures, or each part's time."""
    if len(times) == 1:
        return part_time_line(times[0], of_part=False)
    each = ", ".join(f"part {t.part.number} about {t.stated}" for t in times)
    return (f"*Time: about {sum(t.stated for t in times)} minutes in {len(times)} sittings of at "
            f"most {MAX_SITTING_MINUTES}: {each} minutes; each part states its own at its top.*")


def _with_line(source: str, line: str, where: str, *, after_first: bool) -> str:
    lines = source.splitlines()
    found = [i for i, text in enumerate(lines) if is_time_line(text)]
    if len(found) > 1:
        raise SittingMarkerError(f"{where}: {len(found)} time lines ('*Time...*', lines "
                                 f"{', '.join(str(i + 1) for i in found)}); the build writes one, "
                                 "delete the others")
    if found:
        lines[found[0]] = line
    elif after_first:
        lines[1:1] = ["", line]
    else:
        lines += ["", line]
    return "\n".join(lines)


def set_time_lines(nb, times: list[SittingTime], name: str = "notebook") -> bool:
    """Write the generated time lines into ``nb`` (in place); True if anything changed.

    The notebook's first cell (a markdown title) gets :func:`notebook_time_line`,
    each part's marker cell the part's own; an existing ``*Time...*`` line is
    replaced where it stands, a missing one is added (after the marker's heading,
    at the end of the title cell). A notebook whose first cell is not markdown
    states no time line.
    """
    changed = False
    targets = []
    if nb.cells and nb.cells[0].cell_type == "markdown":
        targets.append((0, notebook_time_line(times), False))
    if len(times) > 1:
        targets += [(t.part.marker, part_time_line(t, of_part=True), True) for t in times]
    for index, line, after_first in targets:
        cell = nb.cells[index]
        updated = _with_line(cell.source, line, f"{name}, cell {index + 1}", after_first=after_first)
        if updated != cell.source:
            cell.source, changed = updated, True
    return changed
