"""Bad input to every CLI subcommand: one ``error:`` line, exit 1, nothing half-written.

One table of cases, each a command line built over a scratch folder (models
that raise, files that are not files, paths that cannot be written). For each:
the exit status is 1, exactly one line of stderr starts with ``error:`` and
names the problem, no traceback is printed, and the scratch folder holds the
same files, byte for byte, before and after. Runs in this process (``main``),
so torch is imported once.
"""
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from course_utils import build
from course_utils.cli import main

FILES = Path(__file__).parent / "files"
ROOT = Path(__file__).resolve().parent.parent

FACTORIES = '''
import torch
import torchvision

def raises():
    raise ValueError("factory exploded")

def tiny():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))

def exits():
    raise SystemExit(0)

def tiny3():
    return torch.nn.Linear(3, 4)

def needs_args(width):
    return torch.nn.Linear(width, 2)

def downloads():
    return torchvision.models.resnet18(weights="DEFAULT")
'''


def _matmul_model(path: Path, op: str = "MatMul", location: str | None = None) -> Path:
    """A (batch, 3) -> (batch, 4) model; ``location`` stores its weight as external data there."""
    weight = numpy_helper.from_array(np.ones((3, 4), np.float32), "w")
    if location is not None:
        weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 4])
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "48")):
            weight.external_data.add(key=key, value=value)
    domain = {"MatMul": "", "FusedMatMul": "com.microsoft"}.get(op, "com.example.nowhere")
    node = helper.make_node(op, ["x", "w"], ["y"], domain=domain)
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4])],
                              initializer=[weight])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def _notebook(path: Path, cells, language: str = "python") -> None:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": language}
    nbformat.write(nb, path)


@pytest.fixture
def scratch(tmp_path, tmp_path_factory, monkeypatch):
    """A folder of bad inputs, importable as modules; bytecode is not written into it."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(tmp_path))
    # Nothing cached to load: a factory that asks for weights must try to download them.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("empty-torch-home")))
    (tmp_path / "raises_on_import.py").write_text('raise RuntimeError("broken on import")\n')
    (tmp_path / "syntax_error.py").write_text("def f(:\n")
    (tmp_path / "factories.py").write_text(FACTORIES)
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "secret.bin").write_bytes(np.ones(12, np.float32).tobytes())
    models = tmp_path / "models"
    models.mkdir()
    _matmul_model(models / "gone-data.onnx", location="gone.bin")
    _matmul_model(models / "escaping-data.onnx", location="../secret.bin")
    _matmul_model(models / "absolute-data.onnx", location=str(tmp_path / "secret.bin"))
    _matmul_model(models / "unknown-op.onnx", op="NoSuchOp")
    _matmul_model(models / "microsoft-op.onnx", op="FusedMatMul")
    shutil.copy(FILES / "small-cnn.onnx", models / "small-cnn.onnx")
    sequence = helper.make_graph(
        [helper.make_node("SequenceLength", ["x"], ["n"])], "seq",
        [helper.make_tensor_sequence_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("n", TensorProto.INT64, [])])
    (models / "sequence-input.onnx").write_bytes(helper.make_model(
        sequence, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString())
    os.mkfifo(tmp_path / "a-pipe")
    # A course root whose notebooks/ holds one bad entry at a time (see _course).
    course = tmp_path / "course"
    (course / "notebooks").mkdir(parents=True)
    (course / "exercises").mkdir()
    name = "03-netron-and-graph-optimisation.ipynb"
    shutil.copy(ROOT / "exercises" / name, course / "exercises" / name)
    monkeypatch.setattr(build, "ROOT", course)
    return tmp_path


def _course(scratch: Path, kind: str) -> None:
    """Put one bad source into the scratch course's notebooks/."""
    notebooks = scratch / "course" / "notebooks"
    title = nbformat.v4.new_markdown_cell("# A notebook")
    if kind == "folder":
        (notebooks / "07-x.ipynb").mkdir()
    elif kind == "not-json":
        (notebooks / "03-netron-and-graph-optimisation.ipynb").write_text('{"cells": [')
    elif kind == "cells-only":
        (notebooks / "03-netron-and-graph-optimisation.ipynb").write_text('{"cells": []}')
    elif kind == "lost-exercises":
        _notebook(notebooks / "03-netron-and-graph-optimisation.ipynb", [title])
    elif kind == "invalid":
        (notebooks / "06-x.ipynb").write_text(json.dumps(
            {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
             "cells": [{"cell_type": "banana", "id": "a", "source": "", "metadata": {}}]}))
    elif kind == "r-kernel":
        _notebook(notebooks / "06-x.ipynb", [title], language="R")
    elif kind == "a-build":
        name = "03-netron-and-graph-optimisation.ipynb"
        shutil.copy(ROOT / "exercises" / name, notebooks / name)
    elif kind == "cell-error":
        _notebook(notebooks / "98-fails.ipynb", [title, nbformat.v4.new_code_cell("x = 1"),
                                                 nbformat.v4.new_code_cell("1 / 0")])


# (id, command line with {s} for the scratch folder, notebook to put in the course, words)
CASES = [
    ("export-module-raises", "export raises_on_import:f {s}/out.onnx", None,
     "importing 'raises_on_import' raised RuntimeError: broken on import"),
    ("export-syntax-error", "export syntax_error:f {s}/out.onnx", None,
     "importing 'syntax_error' raised SyntaxError"),
    ("export-factory-raises", "export factories:raises {s}/out.onnx", None,
     "factories:raises() raised ValueError: factory exploded"),
    ("export-factory-downloads", "export factories:downloads {s}/out.onnx", None,
     "tried to download"),
    ("export-factory-exits", "export factories:exits {s}/out.onnx", None,
     "factories:exits() raised SystemExit"),
    ("export-factory-needs-args", "export factories:needs_args {s}/out.onnx", None,
     "needs arguments"),
    ("export-no-module", "export no_such_module_here:f {s}/out.onnx", None, "could not import"),
    ("export-no-crop-size", "export torchvision:ssdlite320_mobilenet_v3_large {s}/out.onnx", None,
     "names no input size"),
    ("export-two-inputs", "export torchvision:raft_small {s}/out.onnx --input-shape 3,64,64",
     None, "forward takes 2 inputs (image1, image2)"),
    ("export-to-a-folder", "export factories:tiny {s}/a-folder --input-shape 1,8,8", None,
     "is a folder; give the path of the file to write"),
    ("export-under-a-file", "export factories:tiny {s}/a-file/out.onnx --input-shape 1,8,8",
     None, "is a file, not a folder"),
    ("export-opset-99", "export factories:tiny {s}/out.onnx --input-shape 1,8,8 --opset 99",
     None, "opset 99 is not one the dynamo exporter of this torch writes"),
    ("export-opset-torchscript", "export factories:tiny {s}/out.onnx --input-shape 1,8,8 "
     "--torchscript --opset 22", None, "TorchScript exporter"),
    ("export-wrong-shape", "export factories:tiny {s}/out.onnx --input-shape 3,9,9", None,
     "fails on an example input"),
    ("verify-module-raises", "verify {s}/models/small-cnn.onnx raises_on_import:f", None,
     "importing 'raises_on_import' raised RuntimeError"),
    ("verify-factory-raises", "verify {s}/models/small-cnn.onnx factories:raises", None,
     "factories:raises() raised ValueError"),
    ("verify-wrong-model", "verify {s}/models/small-cnn.onnx torchvision:resnet18", None,
     "the PyTorch model fails on the file's inputs (x: (1, 1, 8, 8))"),
    ("verify-unknown-op", "verify {s}/models/unknown-op.onnx factories:tiny", None,
     "ONNX Runtime cannot run"),
    ("verify-sequence-input", "verify {s}/models/sequence-input.onnx factories:tiny", None,
     "which random inputs cannot fill"),
    ("verify-reference-unknown-op", "verify {s}/models/microsoft-op.onnx factories:tiny3 "
     "--reference", None, "onnx's reference evaluator cannot run"),
    ("verify-atol-nan", "verify {s}/models/small-cnn.onnx factories:tiny --atol nan", None,
     "--atol must be a finite number >= 0, got 'nan'"),
    ("verify-rtol-inf", "verify {s}/models/small-cnn.onnx factories:tiny --rtol inf", None,
     "--rtol must be a finite number >= 0, got 'inf'"),
    ("verify-rtol-negative", "verify {s}/models/small-cnn.onnx factories:tiny --rtol -1",
     None, "--rtol must be a finite number >= 0, got '-1'"),
    ("verify-gone-data", "verify {s}/models/gone-data.onnx factories:tiny", None,
     "keeps its weights in a separate file 'gone.bin'"),
    ("verify-dev-zero", "verify /dev/zero factories:tiny", None, "not a regular file"),
    ("inspect-dev-zero", "inspect /dev/zero", None, "not a regular file"),
    ("inspect-pipe", "inspect {s}/a-pipe", None, "not a regular file"),
    ("inspect-folder", "inspect {s}/a-folder", None, "is a folder"),
    ("inspect-not-onnx", "inspect {s}/factories.py", None, "not a binary ONNX model"),
    ("inspect-gone-data", "inspect {s}/models/gone-data.onnx", None,
     "keeps its weights in a separate file 'gone.bin'"),
    ("inspect-escaping-data", "inspect {s}/models/escaping-data.onnx", None,
     "'../secret.bin', a place outside its folder"),
    ("inspect-absolute-data", "inspect {s}/models/absolute-data.onnx", None,
     "a place outside its folder"),
    ("inspect-name-too-long", "inspect {s}/" + "x" * 300 + ".onnx", None, "cannot read"),
    ("netron-dev-zero", "netron /dev/zero", None, "no model file at /dev/zero"),
    ("netron-folder", "netron {s}/a-folder", None, "no model file at"),
    ("bench-json-folder", "bench --json {s}/a-folder", None, "is a folder"),
    ("bench-plots-file", "bench --plots {s}/a-file", None, "is a file; give a folder"),
    ("bench-module-raises", "bench --model raises_on_import:f", None,
     "importing 'raises_on_import' raised RuntimeError"),
    ("bench-factory-raises", "bench --model factories:raises", None,
     "factories:raises() raised ValueError"),
    ("bench-threads-zero", "bench --threads 0", None, "--threads must be a whole number from 1"),
    ("build-folder", "build --no-execute", "folder", "notebooks/07-x.ipynb is not a regular file"),
    ("build-not-json", "build --no-execute", "not-json", "is not valid JSON"),
    ("build-cells-only", "build --no-execute", "cells-only", "is not an nbformat 4 notebook"),
    ("build-lost-exercises", "build --no-execute", "lost-exercises",
     "declares exercises none, but its current build"),
    ("build-invalid", "build --no-execute", "invalid", "not a valid nbformat 4 notebook"),
    ("build-r-kernel", "build --no-execute", "r-kernel", "not a Python notebook"),
    ("build-a-build", "build --no-execute", "a-build", "is a built notebook"),
    ("build-check-folder", "build --check", "folder", "is not a regular file"),
    ("build-cell-error", "build --only 98", "cell-error",
     "98-fails, cell 3: ZeroDivisionError: division by zero"),
    ("build-only-unknown", "build --only 42", None, "no notebook in notebooks/ starts with"),
    ("release-under-a-file", "release {s}/a-file/student", None, "is a file, not a folder"),
    ("nbgrader-under-a-file", "export-nbgrader {s}/a-file/course", None,
     "is a file, not a folder"),
    ("nbgrader-into-a-file", "export-nbgrader {s}/a-file", None, "already exists"),
    ("release-into-a-file", "release {s}/a-file", None, "is a file; give a new folder"),
    ("export-huge-example", "export factories:tiny {s}/out.onnx --input-shape 3,100000,100000",
     None, "more than the 268,435,456 an export needs"),
    ("verify-huge-batch", "verify {s}/models/small-cnn.onnx factories:tiny "
     "--batch-sizes 1,999999999", None, "choose smaller batch sizes"),
    ("bench-threads-huge", "bench --threads 100000", None, "(4 per logical CPU of this machine)"),
]


def _snapshot(folder: Path) -> dict:
    """Every entry under ``folder`` and a digest of each regular file's bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[str(path.relative_to(folder))] = "folder" if path.is_dir() else "other"
    return found


@pytest.mark.parametrize("command, notebook, words", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line(scratch, capsys, command, notebook, words):
    """Is this bad input refused with one `error:` line naming it, exit 1, nothing written?"""
    if notebook:
        _course(scratch, notebook)
    before = _snapshot(scratch)
    argv = [part.format(s=scratch) for part in command.split()]
    status = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert status == 1, err
    assert "Traceback" not in err and "bug in course_utils" not in err, err
    assert len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0], err
    assert words in errors[0], errors[0]
    assert _snapshot(scratch) == before, "the failed command left files behind"


def test_torchvision_models_build_without_downloading(monkeypatch, tmp_path):
    """Do models with a pretrained backbone by default (lraspp) build offline, weights random?"""
    import torch.hub

    from course_utils.export import load_model_spec

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    model = load_model_spec("torchvision:lraspp_mobilenet_v3_large")
    assert type(model).__name__ == "LRASPP" and not model.training
    assert not any(tmp_path.iterdir())
