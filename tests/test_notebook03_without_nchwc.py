"""Does notebook 03 hold on a CPU where ONNX Runtime has no NCHWc layout (most ARM builds)?

ONNX Runtime's ARM builds make no ``com.microsoft.nchwc`` ops by default, so the "all"
level gives another graph there. This test runs ``solutions/03`` as nbval does, in a kernel
whose every ``onnxruntime.InferenceSession`` leaves out the ``NchwcTransformer`` (what such
a build does), and compares each output nbval compares with the one stored from this
machine: a sentence or a number that only holds where NCHWc exists fails here.
"""
import pytest

from conftest import ROOT
from notebook_rerun import changed_outputs, rerun

NOTEBOOK = ROOT / "solutions" / "03-netron-and-graph-optimisation.ipynb"

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


@pytest.mark.skipif(not NOTEBOOK.is_file(), reason="solutions/ not built")
def test_notebook_03_outputs_hold_without_nchwc(tmp_path):
    """Run with the NCHWc transformer disabled, are notebook 03's compared outputs the same?"""
    stored, run = rerun(NOTEBOOK, tmp_path, WITHOUT_NCHWC, PROOF)
    # A print may reach the notebook as several stream outputs (the kernel flushes on its own clock).
    proof = "".join(o.text for o in run.cells[-1].outputs if o.output_type == "stream")
    assert proof.split() == ["False", "True"], f"the NCHWc layout was not off: {proof!r}"
    changed, compared = changed_outputs(stored, run)
    assert not changed, "cells that print something else without NCHWc:\n" + "\n".join(
        f"cell {index}:\n{source}" for index, source in changed)
    assert compared > 20
