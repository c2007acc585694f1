"""Tests for course_utils/sittings.py: the time rule, parts (sittings) and their time lines.

The rule (README, "What the course covers"): reading (150 words of prose and 10 lines of
code a minute, on the student notebook) + the notebook's own run time (recorded per cell
when the build executes the solutions) + an allowance per exercise point, per part, rounded
up to 5 minutes; a part may take at most 90 minutes. The figures of the course's notebooks
come from the notebooks themselves: no test here holds a notebook's points or minutes.
"""
import copy

import nbformat
import pytest

from conftest import ROOT
from course_utils.build import (RUN_ALL_NOTE, make_exercise_notebook, parse_exercises, recorded_run,
                                source_notebooks)
from course_utils.sittings import (MAX_SITTING_MINUTES, MINUTES_PER_POINT, NOT_YET_CUT, SittingMarkerError,
                                   SittingTooLongError, check_sittings, find_parts, is_time_line,
                                   notebook_time_line, set_time_lines, sitting_times)

FILES = ROOT / "tests" / "files"
# Seconds per cell of two-sittings.ipynb as a build would record them (None: markdown).
SECONDS = [None, 1.0, None, 2.0, None, 0.5, 30.0]


def _read(name):
    return nbformat.read(FILES / name, as_version=4)


def _times(nb, name="97-demo", seconds=None):
    return sitting_times(nb, make_exercise_notebook(nb, name), parse_exercises(nb, name), seconds, name)


def test_each_part_adds_reading_running_and_solving():
    """Are words, code lines, points and run seconds counted per part, on the student notebook?"""
    part1, part2 = _times(_read("two-sittings.ipynb"), seconds=SECONDS)
    assert (part1.part.title, part1.part.start, part2.part.title, part2.part.start) == (
        "counting", 0, "greeting", 4)
    # Part 1: the title (20 words and the Run-All note the student build adds), the marker (8
    # words); a setup line and the exercise's header, raise and print lines.
    assert (part1.words, part1.code_lines, part1.points, part1.run_seconds) == (
        28 + len(RUN_ALL_NOTE.split()), 4, 2, 3.0)
    assert (part2.words, part2.code_lines, part2.points, part2.run_seconds) == (15, 4, 3, 30.5)
    assert part2.minutes == pytest.approx(15 / 150 + 4 / 10 + 30.5 / 60 + 3 * MINUTES_PER_POINT)
    assert part2.stated % 5 == 0 and part2.minutes <= part2.stated < part2.minutes + 5


def test_time_lines_go_to_the_top_of_the_notebook_and_of_each_part():
    """Does the build's time line land in the title cell and each part's marker cell, once, and
    is it left out of the words it counts (so writing it changes no figure)?"""
    nb = _read("two-sittings.ipynb")
    times = _times(nb, seconds=SECONDS)
    assert set_time_lines(nb, times) and not set_time_lines(nb, times)  # a second run changes nothing
    title, marker = nb.cells[0].source.splitlines(), nb.cells[4].source.splitlines()
    assert title[-1] == notebook_time_line(times)
    assert f"in 2 sittings of at most {MAX_SITTING_MINUTES}" in title[-1]
    assert marker[0] == "## Part 2 of 2: greeting" and marker[2].startswith(
        f"*Time for this part: about {times[1].stated} minutes: ")
    assert sum(is_time_line(line) for cell in nb.cells for line in cell.source.splitlines()) == 3
    assert _times(nb, seconds=SECONDS) == times


def test_a_stale_time_line_is_replaced_where_it_stands():
    """Is an existing '*Time...*' line rewritten in place, and two of them in one cell refused?"""
    nb = _read("sitting-over-90-minutes.ipynb")
    nb.cells[0].source = "# 97 · T\n\n*Time: about 5 minutes.*\n\nMore text."
    times = _times(nb)
    set_time_lines(nb, times)
    lines = nb.cells[0].source.splitlines()
    assert lines[2] == notebook_time_line(times) and lines[-1] == "More text."
    assert "the cells' run time not measured yet" in lines[2]
    nb.cells[0].source += "\n*Time: again*"
    with pytest.raises(SittingMarkerError, match="cell 1: 2 time lines"):
        set_time_lines(nb, times, "97-demo")


@pytest.mark.parametrize("name, words", [
    ("part-numbers-out-of-order.ipynb", "cell 2: 'Part 2 of 2' where part 1 comes next"),
    ("part-marker-without-of.ipynb", "cell 4: '## Part 2: second' is not a part marker; write it as "
                                     "'## Part K of N: title'"),
])
def test_bad_part_markers_are_refused_with_the_cell_named(name, words):
    """Is a malformed or misnumbered part marker refused, naming the notebook and the cell?"""
    with pytest.raises(SittingMarkerError) as error:
        find_parts(_read(name), name)
    assert str(error.value).startswith(name) and words in str(error.value)


@pytest.mark.parametrize("sources, words", [
    (["# T", "## Part 1 of 2: a", "## Part 2 of 3: b"], "cell 3: 'Part 2 of 3' but cell 2 says of 2"),
    (["# T", "## Part 1 of 3: a", "## Part 2 of 3: b"], "the markers say 3 parts but the notebook has 2"),
    (["# T", "## Part 1 of 1: all"], "needs no part marker"),
    (["# T", "Intro.\n## Part 1 of 2: a", "## Part 2 of 2: b"], "cell 2: the part marker"),
    (["## Part 1 of 2: a", "## Part 2 of 2: b"], "a part marker in the title cell"),
])
def test_every_marker_rule_has_its_own_message(sources, words):
    """Do a different N, a missing part, a lone part, a marker below a cell's first line and a
    marker in the title cell each get a message that says what to change?"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(s) for s in sources])
    with pytest.raises(SittingMarkerError, match=words.replace("(", r"\(")):
        find_parts(nb, "97-demo")


def test_a_sitting_over_90_minutes_is_an_error_with_its_figures():
    """Does a part over 90 minutes fail with its reading, run and solving minutes and what to do,
    unless its notebook is listed as not yet cut?"""
    times = _times(_read("sitting-over-90-minutes.ipynb"), seconds=[None, 60.0])
    with pytest.raises(SittingTooLongError) as error:
        check_sittings(times, "97-demo")
    message = str(error.value)
    assert message.startswith(f"97-demo takes about {times[0].stated} minutes, more than one sitting of 90")
    assert f"reading {times[0].reading_minutes:.1f} minutes, running 1.0, solving 95 for 19 points" in message
    assert "Cut it into parts" in message and "## Part K of N: title" in message
    assert check_sittings(times, "97-demo", exempt={"97-demo"}) == times


def _course_times():
    for path in source_notebooks(ROOT):
        source = nbformat.read(path, as_version=4)
        run = recorded_run(nbformat.read(ROOT / "solutions" / path.name, as_version=4))
        yield path.stem, source, _times(source, path.stem, run["cell_seconds"] if run else None)


def test_only_the_notebooks_not_yet_cut_take_more_than_a_sitting():
    """Is every part of the course at most 90 minutes, except in the notebooks NOT_YET_CUT lists,
    each of which is still over (remove a notebook from that list once it is cut)?"""
    over = {name: [t.stated for t in times if t.minutes > MAX_SITTING_MINUTES]
            for name, _, times in _course_times()}
    assert {name for name, long in over.items() if long} == set(NOT_YET_CUT), over


def test_each_notebook_states_the_rules_time_at_its_top():
    """Does each source notebook's first cell carry the time line the rule gives from its recorded run?"""
    for name, source, times in _course_times():
        lines = [line for line in source.cells[0].source.splitlines() if is_time_line(line)]
        assert lines == [notebook_time_line(times)], f"{name}: run python -m course_utils build"
        stated = copy.deepcopy(source)
        assert not set_time_lines(stated, times, name), name
