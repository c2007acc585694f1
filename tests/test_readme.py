"""Does the README say what the notebooks declare (points table, notebook list)?"""
import re

import nbformat

from course_utils.build import parse_exercises, source_notebooks


def _declared(root):
    rows = []
    for path in source_notebooks(root):
        rows += [(e.id, e.points, e.task)
                 for e in parse_exercises(nbformat.read(path, as_version=4), path.stem)]
    return rows


def test_points_table_matches_the_exercise_headers(root):
    """Is every README points-table row the header's id, points and task, with the right total?"""
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = [(m[0], int(m[1]), m[2].strip())
             for m in re.findall(r"^\| (\d\d\.\d+) \| (\d+) \| (.*) \|$", readme, flags=re.M)]
    declared = _declared(root)
    assert table == [(i, p, t.replace("|", "/")) for i, p, t in declared]
    total = re.search(r"^\| \*\*total\*\* \| \*\*(\d+)\*\* \|", readme, flags=re.M)
    assert total and int(total.group(1)) == sum(p for _, p, _ in declared)


def test_notebook_table_lists_every_notebook(root):
    """Does the README's notebook table name each notebook in notebooks/, in order?"""
    readme = (root / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(\d\d-[\w-]+)` \|", readme, flags=re.M)
    assert listed == [p.stem for p in source_notebooks(root)]
