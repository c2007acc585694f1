"""Tests for course_utils/readme_tables.py: are the README's tables derived from the notebooks?

The notebook table (what you do, time, one row per part) and the points table are written by
``python -m course_utils build`` between marker comments; ``build --check`` names README.md when
they differ from what the notebooks declare. No test here holds a notebook's points or minutes.
"""
import re
import shutil

import nbformat
import pytest

from conftest import ROOT
from course_utils.build import build_notebooks, source_notebooks
from course_utils.readme_tables import ReadmeSourceError, fill_regions, what_you_do
from course_utils.sittings import is_time_line

FILES = ROOT / "tests" / "files"
README = """# A course

<!-- BEGIN GENERATED notebook-table: written by `python -m course_utils build` from notebooks/; edit the notebooks, not this -->
<!-- END GENERATED notebook-table -->

Points:

<!-- BEGIN GENERATED points-table: written by `python -m course_utils build` from notebooks/; edit the notebooks, not this -->
<!-- END GENERATED points-table -->
"""


@pytest.fixture
def course(tmp_path):
    """A course of one notebook in two sittings, built once (without executing it)."""
    (tmp_path / "notebooks").mkdir()
    shutil.copy(FILES / "two-sittings.ipynb", tmp_path / "notebooks" / "97-sittings.ipynb")
    (tmp_path / "README.md").write_text(README, encoding="utf-8")
    build_notebooks(tmp_path, execute=False)
    return tmp_path


def _rows(readme: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in readme.splitlines()
            if line.startswith("| ") and not line.startswith("| ---")]


def test_the_tables_come_from_the_notebook(course):
    """Does the build write what-you-do, each part's time and the points from the notebook alone?"""
    readme = (course / "README.md").read_text(encoding="utf-8")
    rows = _rows(readme)
    notebook = nbformat.read(course / "notebooks" / "97-sittings.ipynb", as_version=4)
    parts = [line for cell in notebook.cells for line in cell.source.splitlines() if is_time_line(line)][1:]
    minutes = [int(re.search(r"about (\d+) minutes", line).group(1)) for line in parts]
    assert rows[1] == ["`97-sittings`", "count to three, then say hello.", f"{sum(minutes)} min in 2 sittings"]
    assert rows[2:4] == [["97, part 1 of 2", "counting", f"{minutes[0]} min"],
                         ["97, part 2 of 2", "greeting", f"{minutes[1]} min"]]
    assert rows[5:] == [["97.1", "2", "append 1, 2 and 3 to `numbers`"],
                        ["97.2", "3", 'say "hello" in `greeting`'], ["**total**", "**5**", ""]]
    assert build_notebooks(course, check=True) == ["solutions/97-sittings.ipynb"]  # not executed


def test_an_edited_readme_table_is_caught(course):
    """Is a hand edit inside a generated region named by --check, and undone by the next build?"""
    readme = course / "README.md"
    built = readme.read_text(encoding="utf-8")
    readme.write_text(built.replace("| 97.2 | 3 |", "| 97.2 | 4 |"), encoding="utf-8")
    assert "README.md" in build_notebooks(course, check=True)
    build_notebooks(course, execute=False)
    assert readme.read_text(encoding="utf-8") == built


def test_a_changed_points_value_changes_the_readme_and_the_time(course):
    """Does a header's new points value reach the points table, the total and the stated time,
    from the notebook alone?"""
    path = course / "notebooks" / "97-sittings.ipynb"
    before = _rows((course / "README.md").read_text(encoding="utf-8"))
    nb = nbformat.read(path, as_version=4)
    nb.cells[6].source = nb.cells[6].source.replace("(3 points)", "(5 points)")
    nbformat.write(nb, path)
    assert {"README.md", "notebooks/97-sittings.ipynb"} <= set(build_notebooks(course, check=True))
    build_notebooks(course, execute=False)
    after = _rows((course / "README.md").read_text(encoding="utf-8"))
    assert after[6] == ["97.2", "5", 'say "hello" in `greeting`'] and after[7][1] == "**7**"
    assert int(after[3][2].split()[0]) == int(before[3][2].split()[0]) + 10  # 2 points at 5 minutes


def test_region_markers_are_checked():
    """Is a missing, unclosed or unknown region refused with the line and what to write?"""
    contents = {"notebook-table": "T", "points-table": "P"}
    filled = fill_regions(README, contents)
    assert "\n\nT\n\n<!-- END GENERATED notebook-table -->" in filled and fill_regions(filled, contents) == filled
    with pytest.raises(ReadmeSourceError, match="has no generated region 'points-table'"):
        fill_regions(README.split("Points:")[0], contents)
    with pytest.raises(ReadmeSourceError, match="line 8: region 'points-table' is never closed"):
        fill_regions(README.replace("<!-- END GENERATED points-table -->\n", ""), contents)
    with pytest.raises(ReadmeSourceError, match="line 3: unknown generated region 'notebooks'"):
        fill_regions(README.replace("GENERATED notebook-table:", "GENERATED notebooks:"), contents)


def test_what_you_do_is_a_paragraph_of_the_first_cell(tmp_path):
    """Is the first cell's 'What you do' paragraph read as one line, and a notebook without one
    refused by the build before anything is written?"""
    nb = nbformat.read(FILES / "two-sittings.ipynb", as_version=4)
    assert what_you_do(nb) == "count to three, then say hello."
    (tmp_path / "notebooks").mkdir()
    shutil.copy(FILES / "two-exercises.ipynb", tmp_path / "notebooks" / "99-demo.ipynb")
    (tmp_path / "README.md").write_text(README, encoding="utf-8")
    with pytest.raises(ReadmeSourceError, match=r"notebooks/99-demo.ipynb: its first cell has no paragraph"):
        build_notebooks(tmp_path, execute=False)
    assert not (tmp_path / "exercises").exists()


def test_the_course_readme_lists_every_notebook_with_the_time_it_states(root):
    """Does the README's notebook table name each notebook in order with its first cell's time?"""
    readme = (root / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(\d\d-[\w-]+)` \| .* \| (\d+) min( in \d+ sittings)? \|$", readme, flags=re.M)
    assert [name for name, _, _ in listed] == [p.stem for p in source_notebooks(root)]
    for name, minutes, _ in listed:
        title = nbformat.read(root / "notebooks" / f"{name}.ipynb", as_version=4).cells[0].source
        assert re.search(rf"^\*Time: about {minutes} minutes", title, flags=re.M), name
