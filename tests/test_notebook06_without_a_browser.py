"""Does notebook 06 hold where no browser can be driven (no Chromium, a remote hub, a sandbox)?

Its browser cells must then skip, each with one line that says why, and every other figure
must stand. This test runs the solutions' cells from the exercise (step 3) to the end in this
process, with ``ONNX_COURSE_BROWSER=none`` and the tests' small digits CNN standing in for the
notebook's export (steps 1 and 2 need no browser and cost a training run): no cell may raise.
"""
import shutil

import nbformat
import pytest

from conftest import ROOT

NOTEBOOK = ROOT / "solutions" / "06-browser.ipynb"
STAND_IN = '''
from course_utils.digits import accuracy, load_digits_split

x_train, x_test, y_train, y_test = load_digits_split()
web_path = Path("artifacts/digits-web.onnx")
web_model = onnx.load(web_path)
'''


@pytest.mark.skipif(not NOTEBOOK.is_file(), reason="solutions/ not built")
def test_the_browser_cells_skip_with_one_line_each(tmp_path, monkeypatch, capsys):
    """With no browser to drive, does each browser cell print one line naming the reason, the
    exercise say it needs a browser (not wrong), and the closing cell say no page ran?"""
    cells = [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    first = next(i for i, source in enumerate(cells) if source.startswith("# Exercise 06.1"))
    (tmp_path / "artifacts").mkdir()
    shutil.copy(ROOT / "tests" / "files" / "small-cnn.onnx", tmp_path / "artifacts" / "digits-web.onnx")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ONNX_COURSE_BROWSER", "none")
    namespace = {}
    for source in [cells[1], STAND_IN] + cells[first:]:  # cells[1]: the imports
        exec(compile(source, "notebook 06", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    reason = "no browser is driven here (ONNX_COURSE_BROWSER=none)"
    assert "[not checked] Exercise 06.1: needs a browser to grade: " + reason in printed
    assert f"browser run skipped: {reason}" in printed
    for page in ("wasm, 1 thread", "wasm, 2 threads, isolated", "webgpu, 1 thread"):
        assert f"{page}: skipped: {reason}" in printed  # parity, one line per page
    assert "the browser, with only the .onnx served: skipped" in printed
    assert any(line.startswith("Python onnxruntime, 1 thread") for line in printed)
    assert f"No page ran the model here ({reason}); the export, its contract and Python's figures stand." in printed
