"""Does each notebook's stated time follow the README's rule, and does the README state the same?

The rule (README, "What the course covers"): 150 words of prose and 10 lines of code read a
minute, plus 3 minutes per exercise point, counted on the student notebook (``exercises/``: the
markdown cells' words, the code cells' non-blank lines) with the points declared in
``notebooks/``. The figure stated at the top ("*Time: about N minutes") is that estimate rounded
to a multiple of 5 minutes, up or to the nearest.
"""
import re

import nbformat
import pytest

from conftest import ROOT
from course_utils.build import parse_exercises, source_notebooks

NOTEBOOKS = [p.stem for p in source_notebooks(ROOT)]


def estimate_minutes(stem: str) -> float:
    """The README's reading-and-solving estimate for one notebook, unrounded."""
    student = nbformat.read(ROOT / "exercises" / f"{stem}.ipynb", as_version=4)
    words = sum(len(c.source.split()) for c in student.cells if c.cell_type == "markdown")
    lines = sum(1 for c in student.cells if c.cell_type == "code" for line in c.source.splitlines()
                if line.strip())
    source = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    points = sum(e.points for e in parse_exercises(source, stem))
    return words / 150 + lines / 10 + 3 * points


def stated_minutes(stem: str) -> int:
    source = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4).cells[0].source
    found = re.search(r"\*Time: about (\d+) minutes", source)
    assert found, f"{stem}: the first cell states no '*Time: about N minutes'"
    return int(found.group(1))


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_stated_time_is_the_estimate_rounded_to_5_minutes(stem):
    """Is the figure at the top the README rule's estimate, rounded up or to the nearest 5 minutes?"""
    estimate, stated = estimate_minutes(stem), stated_minutes(stem)
    assert stated % 5 == 0 and estimate - 2.5 <= stated < estimate + 5, (
        f"{stem} states {stated} minutes; the rule gives {estimate:.1f}")


def test_readme_states_each_notebooks_time():
    """Does the README's notebook table give each notebook the time its first cell states?"""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `(\d\d-[\w-]+)` \|.*\| (\d+) min \|$", readme, flags=re.M))
    assert {stem: int(minutes) for stem, minutes in listed.items()} == {s: stated_minutes(s) for s in NOTEBOOKS}
