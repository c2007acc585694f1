"""Does notebook 01 run to its end where the OpenVINO plugin provider is absent?

The plugin (``onnxruntime-ep-openvino``) has wheels for Linux x86-64 and Windows x64 only, and
offers a device only on Intel hardware. This test runs ``solutions/01`` in a kernel that cannot
import it (what a Mac, an Arm laptop or a setup without the plugin gives): every cell on the
second provider must print its skip with the reason and go on, and every output nbval compares
must be the one stored, whichever path the build took.
"""
import configparser
import re
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOK = ROOT / "solutions" / "01-execution-providers.ipynb"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"

# Run first in the kernel: the plugin's module cannot be found or imported.
WITHOUT_PLUGIN = 'import sys\nsys.modules["onnxruntime_ep_openvino"] = None'
# Run last: proof that the run really had no second provider, and why.
PROOF = 'print(second, describe_second_provider())'


def _sanitizers():
    parser = configparser.ConfigParser()
    parser.read(SANITIZE)
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def _text(cell, sanitizers=()) -> str:
    """The outputs nbval compares for one cell (streams and plain text), sanitised."""
    parts = [o.text if o.output_type == "stream" else o.data.get("text/plain", "")
             for o in cell.get("outputs", []) if o.output_type == "stream" or "data" in o]
    text = "".join(parts)
    for pattern, replacement in sanitizers:
        text = pattern.sub(replacement, text)
    return text


@pytest.mark.skipif(not NOTEBOOK.is_file(), reason="solutions/ not built")
def test_notebook_01_runs_to_its_end_without_the_plugin(tmp_path):
    """Without the plugin, does every second-provider cell skip with the reason, and does
    every compared output stay the one stored?"""
    stored = nbformat.read(NOTEBOOK, as_version=4)
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    run = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    run.cells.insert(0, nbformat.v4.new_code_cell(WITHOUT_PLUGIN))
    run.cells.append(nbformat.v4.new_code_cell(PROOF))
    NotebookClient(run, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on an error
    proof = _text(run.cells[-1])
    assert proof.startswith("False no: onnxruntime-ep-openvino is not installed"), proof
    skips = [_text(cell) for cell in run.cells if "skipped (" in _text(cell)]
    assert len(skips) >= 3 and all("onnxruntime-ep-openvino is not installed" in s for s in skips)
    sanitizers = _sanitizers()
    compared = 0
    for before, after in zip(stored.cells, run.cells[1:-1]):
        if before.cell_type != "code" or "NBVAL_IGNORE_OUTPUT" in before.source:
            continue
        assert _text(after, sanitizers) == _text(before, sanitizers), (
            f"this cell prints something else without the plugin:\n{before.source}")
        compared += 1
    assert compared > 10
