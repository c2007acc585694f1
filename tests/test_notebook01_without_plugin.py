"""Does notebook 01 run to its end where the OpenVINO plugin provider is absent?

The plugin (``onnxruntime-ep-openvino``) has wheels for Linux x86-64 and Windows x64 only, and
offers a device only on Intel hardware. This test runs ``solutions/01`` in a kernel that cannot
import it (what a Mac, an Arm laptop or a setup without the plugin gives): every cell on the
second provider must print its skip with the reason and go on, and every output nbval compares
must be the one stored, whichever path the build took.
"""
import pytest

from conftest import ROOT
from notebook_rerun import changed_outputs, compared_text, rerun

NOTEBOOK = ROOT / "solutions" / "01-execution-providers.ipynb"

# Run first in the kernel: the plugin's module cannot be found or imported.
WITHOUT_PLUGIN = 'import sys\nsys.modules["onnxruntime_ep_openvino"] = None'
# Run last: proof that the run really had no second provider, and why.
PROOF = 'print(second, describe_second_provider())'


@pytest.mark.skipif(not NOTEBOOK.is_file(), reason="solutions/ not built")
def test_notebook_01_runs_to_its_end_without_the_plugin(tmp_path):
    """Without the plugin, does every second-provider cell skip with the reason, and does
    every compared output stay the one stored?"""
    stored, run = rerun(NOTEBOOK, tmp_path, WITHOUT_PLUGIN, PROOF)
    proof = compared_text(run.cells[-1])
    assert proof.startswith("False no: onnxruntime-ep-openvino is not installed"), proof
    skips = [compared_text(cell) for cell in run.cells if "skipped (" in compared_text(cell)]
    assert len(skips) >= 3 and all("onnxruntime-ep-openvino is not installed" in s for s in skips)
    changed, compared = changed_outputs(stored, run)
    assert not changed, "cells that print something else without the plugin:\n" + "\n".join(
        f"cell {index}:\n{source}" for index, source in changed)
    assert compared > 10
