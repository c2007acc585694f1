"""Do the student notebooks run cleanly up to their first exercise, and stop there?"""
import shutil

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "exercises").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stops_at_first_exercise_with_not_implemented(path, tmp_path):
    """Does the first failing cell raise the first exercise's NotImplementedError, and nothing else?"""
    nb = nbformat.read(path, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if "exercise" in c.metadata.get("course_utils", {}))
    exercise_id = nb.cells[first].metadata["course_utils"]["exercise"]
    nb.cells = nb.cells[: first + 1]  # nothing after it is needed to prove the point
    shutil.copy(path, tmp_path / path.name)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as error:
        client.execute()
    assert error.value.ename == "NotImplementedError"
    assert f"Exercise {exercise_id}:" in error.value.evalue
    failed = [i for i, c in enumerate(nb.cells)
              if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert failed == [first]
