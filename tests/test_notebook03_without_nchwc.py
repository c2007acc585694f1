"""Does notebook 03 hold on a CPU where ONNX Runtime has no NCHWc layout (most ARM builds)?

ONNX Runtime's ARM builds make no ``com.microsoft.nchwc`` ops by default, so the "all"
level gives another graph there. This test runs ``solutions/03`` as nbval does, in a kernel
whose every ``onnxruntime.InferenceSession`` leaves out the ``NchwcTransformer`` (what such
a build does), and compares each output nbval compares with the one stored from this
machine: a sentence or a number that only holds where NCHWc exists fails here.
"""
import configparser
import re
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOK = ROOT / "solutions" / "03-netron-and-graph-optimisation.ipynb"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"

# Run first in the kernel: every session is made as a build without NCHWc kernels makes it.
WITHOUT_NCHWC = '''
import onnxruntime as _ort

_create = _ort.InferenceSession.__init__

def _without_nchwc(self, *args, **kwargs):
    kwargs["disabled_optimizers"] = set(kwargs.get("disabled_optimizers") or ()) | {"NchwcTransformer"}
    _create(self, *args, **kwargs)

_ort.InferenceSession.__init__ = _without_nchwc
'''
# Run last: proof that the run really had no NCHWc.
PROOF = 'print(uses_nchwc_layout(), comparison.node_counts["all"] == comparison.node_counts["extended"])'


def _sanitizers():
    parser = configparser.ConfigParser()
    parser.read(SANITIZE)
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def _compared_text(cell, sanitizers) -> str:
    """The outputs nbval compares for one cell (streams and plain text), sanitised."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output and "text/plain" in output.data:
            parts.append(output.data["text/plain"])
    text = "".join(parts)
    for pattern, replacement in sanitizers:
        text = pattern.sub(replacement, text)
    return text


@pytest.mark.skipif(not NOTEBOOK.is_file(), reason="solutions/ not built")
def test_notebook_03_outputs_hold_without_nchwc(tmp_path):
    """Run with the NCHWc transformer disabled, are notebook 03's compared outputs the same?"""
    stored = nbformat.read(NOTEBOOK, as_version=4)
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    run = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    run.cells.insert(0, nbformat.v4.new_code_cell(WITHOUT_NCHWC))
    run.cells.append(nbformat.v4.new_code_cell(PROOF))
    NotebookClient(run, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    # A print may reach the notebook as several stream outputs (the kernel flushes on its own clock).
    proof = "".join(o.text for o in run.cells[-1].outputs if o.output_type == "stream")
    assert proof.split() == ["False", "True"], f"the NCHWc layout was not off: {proof!r}"
    sanitizers = _sanitizers()
    compared = 0
    for index, (before, after) in enumerate(zip(stored.cells, run.cells[1:-1])):
        if before.cell_type != "code" or "NBVAL_IGNORE_OUTPUT" in before.source:
            continue
        assert _compared_text(after, sanitizers) == _compared_text(before, sanitizers), (
            f"cell {index} prints something else without NCHWc:\n{before.source}")
        compared += 1
    assert compared > 20
