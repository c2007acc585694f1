"""The README's generated tables: what each notebook is about, its time, and the points.

Covers: the two regions of ``README.md`` that ``python -m course_utils build``
writes (:func:`fill_regions`) between marker comments, the notebook table
(:func:`notebook_table`: notebook, what you do, time, one row per part of a
notebook cut into sittings, and the time rule in words) and the points table
(:func:`points_table`), and the "what you do" line each notebook's first cell
carries (:func:`what_you_do`). Does not cover: computing the times
(``sittings.py``) or reading the notebooks (``build.py`` hands over the figures).

A notebook's author edits only the notebook: the first cell's paragraph that
starts with ``**What you do:**``, the exercise headers (id, points, task), and
the cells whose length and run time give the time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import CourseError
from .sittings import (CODE_LINES_PER_MINUTE, MAX_SITTING_MINUTES, MINUTES_PER_POINT, WORDS_PER_MINUTE,
                       SittingTime)

__all__ = ["fill_regions", "notebook_table", "points_table", "what_you_do", "is_region_marker",
           "NotebookEntry", "ReadmeSourceError", "REGIONS"]

#: The generated regions, in the order they appear in the README.
REGIONS = ("notebook-table", "points-table")
_BEGIN = ("<!-- BEGIN GENERATED {name}: written by `python -m course_utils build` from notebooks/; "
          "edit the notebooks, not this -->")
_END = "<!-- END GENERATED {name} -->"
_MARKER = re.compile(r"^<!-- (BEGIN|END) GENERATED ([\w-]+)\b.*-->$")
_WHAT = "**What you do:**"


class ReadmeSourceError(CourseError, ValueError):
    """A README region marker, or a notebook line the README's tables come from, that is unusable."""


@dataclass
class NotebookEntry:
    """What the README says about one notebook."""

    name: str
    what_you_do: str
    times: list[SittingTime]
    exercises: list = field(default_factory=list)  # build.Exercise: id, points, task


def is_region_marker(line: str) -> bool:
    """True for a line that opens or closes a generated region."""
    return bool(_MARKER.match(line.strip()))


def what_you_do(nb, name: str = "notebook") -> str:
    """The paragraph of the notebook's first cell that starts with ``**What you do:**``, as one line.

    Raises:
        ReadmeSourceError: the first cell has no such paragraph.

    Example:
        >>> import nbformat
        >>> cell = nbformat.v4.new_markdown_cell("# T\\n\\n**What you do:** export a model\\nand run it.\\n\\nMore.")
        >>> what_you_do(nbformat.v4.new_notebook(cells=[cell]))
        'export a model and run it.'
    """
    lines = nb.cells[0].source.splitlines() if nb.cells and nb.cells[0].cell_type == "markdown" else []
    for index, line in enumerate(lines):
        if line.strip().startswith(_WHAT):
            paragraph = [line.strip()[len(_WHAT):]]
            for following in lines[index + 1:]:
                if not following.strip():
                    break
                paragraph.append(following.strip())
            text = " ".join(part for part in paragraph if part).strip()
            if text:
                return text
    raise ReadmeSourceError(f"notebooks/{name}.ipynb: its first cell has no paragraph that starts "
                            f"with '{_WHAT}'; the README's notebook table takes that column from it. "
                            f"Add one to the title cell ('{_WHAT} export ..., then ...'), followed by "
                            "a blank line")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def notebook_table(entries: list[NotebookEntry]) -> str:
    """The notebook table and the time rule in words (Markdown)."""
    rows = ["| notebook | what you do | time |", "| --- | --- | --- |"]
    for entry in entries:
        total = sum(t.stated for t in entry.times)
        sittings = f" in {len(entry.times)} sittings" if len(entry.times) > 1 else ""
        rows.append(f"| `{entry.name}` | {_cell(entry.what_you_do)} | {total} min{sittings} |")
        if len(entry.times) > 1:
            rows += [f"| {entry.name[:2]}, part {t.part.number} of {t.part.of} | {_cell(t.part.title)} "
                     f"| {t.stated} min |" for t in entry.times]
    long = [e.name for e in entries if any(t.minutes > MAX_SITTING_MINUTES for t in e.times)]
    rule = (f"Each time is reading ({WORDS_PER_MINUTE} words of prose and {CODE_LINES_PER_MINUTE} lines "
            "of code a minute, counted on the student notebook), plus the time the notebook's cells "
            "took to run when the solutions were last executed (on the machine that each notebook's "
            f"first code cell names), plus {MINUTES_PER_POINT} minutes per exercise point for solving, "
            "rounded up to 5 minutes; each notebook states the same figures at its top. A sitting is "
            f"at most {MAX_SITTING_MINUTES} minutes: a longer notebook comes in parts, each with its "
            "time at its top and a checkpoint at its start, so that you can begin it another day "
            "without running the parts before it.")
    if long:
        names = ", ".join(f"`{name}`" for name in long)
        rule += (f" Not cut into parts yet, and longer than one sitting: {names}; plan two sittings "
                 "for each, and after a break run the cells above the place where you stopped "
                 "before going on.")
    return "\n".join(rows) + "\n\n" + rule


def points_table(entries: list[NotebookEntry]) -> str:
    """The table of every exercise's id, points and task, with the total (Markdown)."""
    rows = ["| exercise | points | task |", "| --- | ---: | --- |"]
    exercises = [e for entry in entries for e in entry.exercises]
    rows += [f"| {e.id} | {e.points} | {e.task.replace('|', '/')} |" for e in exercises]
    rows.append(f"| **total** | **{sum(e.points for e in exercises)}** | |")
    return "\n".join(rows)


def fill_regions(text: str, contents: dict[str, str], where: str = "README.md") -> str:
    """``text`` with each generated region's body replaced by ``contents[region]``.

    Raises:
        ReadmeSourceError: a region's markers are missing, repeated, out of order or
            unknown; the message names the line and what to write.
    """
    lines = text.splitlines()
    spans: dict[str, list[int]] = {}
    open_region = None
    for number, line in enumerate(lines, start=1):
        found = _MARKER.match(line.strip())
        if not found:
            continue
        kind, region = found.groups()
        if region not in contents:
            raise ReadmeSourceError(f"{where}, line {number}: unknown generated region {region!r} "
                                    f"(known: {', '.join(contents)}); fix the marker's name")
        if kind == "BEGIN":
            if open_region or region in spans:
                what = (f"inside region {open_region!r}, which is not closed" if open_region
                        else "a second time")
                raise ReadmeSourceError(f"{where}, line {number}: region {region!r} opens {what}; "
                                        f"each region is opened once and closed with "
                                        f"'{_END.format(name=region)}'")
            open_region, spans[region] = region, [number]
        else:
            if open_region != region:
                raise ReadmeSourceError(f"{where}, line {number}: region {region!r} closes without "
                                        f"being open; put '{_BEGIN.format(name=region)}' before it")
            spans[region].append(number)
            open_region = None
    if open_region:
        raise ReadmeSourceError(f"{where}, line {spans[open_region][0]}: region {open_region!r} is "
                                f"never closed; add '{_END.format(name=open_region)}' after it")
    missing = [name for name in contents if name not in spans]
    if missing:
        raise ReadmeSourceError(f"{where} has no generated region {missing[0]!r}; put the lines "
                                f"'{_BEGIN.format(name=missing[0])}' and "
                                f"'{_END.format(name=missing[0])}' where the table goes")
    for region, (begin, end) in sorted(spans.items(), key=lambda item: -item[1][0]):
        lines[begin:end - 1] = ["", *contents[region].splitlines(), ""]
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")
