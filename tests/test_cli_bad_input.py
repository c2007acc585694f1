"""Bad input to every CLI subcommand: one ``error:`` line, exit 1, nothing half-written.

One table of cases, each a command line built over a scratch folder (models
that raise, files that are not files, paths that cannot be written). For each:
the exit status is 1, exactly one line of stderr starts with ``error:`` and
names the problem, no traceback is printed, and the scratch folder holds the
same files, byte for byte, before and after. Runs in this process (``main``),
so torch is imported once.
"""
import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from course_utils import build, nbgrader_export, release
from course_utils.cli import build_parser, main

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
    for name in ("factories", "factories2", "raises_on_import", "syntax_error"):
        monkeypatch.delitem(sys.modules, name, raising=False)  # this test's files, not an earlier one's
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
    for module in (build, release, nbgrader_export):  # the commands' course is this one
        monkeypatch.setattr(module, "ROOT", course)
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
    _refused(scratch, capsys, [part.format(s=scratch) for part in command.split()], words)


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


@functools.lru_cache(maxsize=None)
def _all_options() -> dict[str, set[str]]:
    """Every subcommand and its option strings."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {command: {flag for action in subparser._actions for flag in action.option_strings}
            for command, subparser in sub.choices.items()}


def _options_of(command: str) -> set[str]:
    return _all_options()[command]


def _refused(scratch: Path, capsys, argv: list[str], words: str) -> str:
    """Run ``argv``: one `error:` line holding ``words``, exit 1, no traceback, nothing written
    in ``scratch``, and every option the line names is one the command has."""
    before = _snapshot(scratch)
    status = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert status == 1, err
    assert "Traceback" not in err and "bug in course_utils" not in err, err
    assert len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0], err
    assert words in errors[0], errors[0]
    assert _snapshot(scratch) == before, "the failed command left files behind"
    # Advice must be followable: an option the line names is one of this command's, or of the
    # command named just before it ("written by grade --json", `python -m course_utils export`).
    words_before = re.sub(r"`[^`]*`", "", errors[0]).split()
    for index, word in enumerate(words_before):
        flag = _FLAG.match(word)
        if flag:
            near = [w.strip("`'\"(,;") for w in words_before[max(0, index - 3):index]]
            command = next((w for w in reversed(near) if w in _commands()), argv[0])
            assert flag.group() in _options_of(command), f"{flag.group()} ({command}) in {errors[0]}"
    return errors[0]


def _commands() -> set[str]:
    return set(_all_options())


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


# ---------------------------------------------------------------------------------------------
# One test per class of bad input, each over every command it applies to. A case that runs
# succeeds only through _refused: one line, exit 1, nothing written, only options that exist.

GRADE_ROW = {"path": "subs/alice/00-install-check.ipynb", "student": "alice",
             "notebook": "00-install-check", "error": None, "notes": [], "seconds": 1.5,
             "points": 1, "max_points": 1,
             "exercises": {"00.1": {"points": 1, "max_points": 1, "passed": True, "feedback": "ok"}}}
ROSTER = "Student,ID,SIS User ID,SIS Login ID,Section\nJosé Núñez,7,s7,alice,A\n"

FACTORIES_2 = '''
import torch

class _NoReturn(torch.nn.Module):
    def forward(self, x):
        x + 1  # the `return` is missing

class _Exits(torch.nn.Module):
    def forward(self, x):
        raise SystemExit(3)

class Stop(BaseException):
    pass

def returns_none():
    return _NoReturn()

def forward_exits():
    return _Exits()

def raises_base_exception():
    raise Stop("a BaseException of its own")
'''


@pytest.fixture
def door(scratch):
    """The scratch folder, with valid inputs for the commands that read grades and rosters."""
    (scratch / "grades.json").write_text(json.dumps([GRADE_ROW]))
    (scratch / "part.json").write_text(json.dumps([{**GRADE_ROW, "order": 0}]))
    os.link(scratch / "part.json", scratch / "part-hard-link.json")
    (scratch / "grades-link.json").symlink_to(scratch / "grades.json")
    (scratch / "roster.csv").write_text(ROSTER, encoding="utf-8")
    (scratch / "subs" / "alice").mkdir(parents=True)
    shutil.copy(ROOT / "exercises" / "00-install-check.ipynb",
                scratch / "subs" / "alice" / "00-install-check.ipynb")
    (scratch / "factories2.py").write_text(FACTORIES_2)
    return scratch


def _bad_path(scratch: Path, kind: str, suffix: str) -> str:
    """A path of ``kind`` in ``scratch`` whose name ends with ``suffix``."""
    if kind == "empty":
        return ""
    if kind == "long-name":
        return str(scratch / ("n" * 300 + suffix))
    if kind == "not-utf8":
        raw = os.fsencode(scratch) + b"/caf\xe9" + suffix.encode()
        with open(raw, "wb") as handle:
            handle.write(b"{}")
        return os.fsdecode(raw)
    path = scratch / f"{kind}{suffix}"
    if kind == "loop":
        (scratch / f"loop-other{suffix}").symlink_to(path)
        path.symlink_to(scratch / f"loop-other{suffix}")
    elif kind == "dangling":
        path.symlink_to(scratch / "nothing-here")
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "unreadable":
        path.write_text("{}")
        path.chmod(0)
    return str(path)


# (kind, words of the refusal)
BAD_INPUTS = [
    ("loop", "symbolic link loop"), ("dangling", "dangling link"),
    ("long-name", "more than the 255"), ("not-utf8", "is not valid UTF-8"),
    ("folder", "is a folder"), ("fifo", "is a named pipe (FIFO), not a regular file"),
    ("device", "is a character device, not a regular file"), ("unreadable", "permission denied"),
    ("empty", "is empty; give the path of a file or folder"),
]
# (command line with {p} for the path it reads, the path's suffix)
READERS = {
    "verify": ("verify {p} factories:tiny", ".onnx"),
    "providers-placement": ("providers --placement {p}", ".onnx"),
    "inspect": ("inspect {p}", ".onnx"),
    "netron": ("netron {p}", ".onnx"),
    "selfcheck": ("selfcheck {p}", ".ipynb"),
    "report": ("report {p} --out {s}/report", ".json"),
    "gradebook": ("gradebook gradescope {p} --out {s}/results.json", ".json"),
    "gradebook-roster": ("gradebook canvas {s}/grades.json --roster {p} --out {s}/canvas.csv", ".csv"),
    "grade-merge": ("grade --merge {p} --json {s}/merged.json", ".json"),
}


@pytest.mark.parametrize("kind, words", BAD_INPUTS, ids=[k for k, _ in BAD_INPUTS])
@pytest.mark.parametrize("reader", READERS)
def test_an_input_that_is_no_regular_file_is_refused_unopened(door, capsys, reader, kind, words):
    """Is a loop, dangling link, overlong or undecodable name, folder, FIFO, device or unreadable
    file given as an input refused by name before anything is read (a FIFO never hangs)?"""
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads files without permission")
    command, suffix = READERS[reader]
    path = _bad_path(door, kind, suffix)
    argv = [part.format(s=door, p=path) for part in command.split()]
    _refused(door, capsys, argv, words)


# (kind, words): what stands where a command would write
BAD_OUTPUTS = [
    ("fifo", "named pipe (FIFO)"), ("dangling", "dangling link"), ("loop", "symbolic link loop"),
    ("long-name", "more than the 255"), ("not-utf8", "is not valid UTF-8"),
    ("read-only", "is not writable"), ("under-a-file", "is a file, not a folder"),
    ("device", "is a character device"), ("empty", "is empty; give the path of a file or folder"),
]
# (command line with {o} for what it writes, whether {o} is a folder)
WRITERS = {
    "export": "export factories:tiny {o} --input-shape 1,8,8",
    "bench-json": "bench --json {o}",
    "bench-plots": "bench --plots {o}",
    "gradebook": "gradebook gradescope {s}/grades.json --out {o}",
    "report-out": "report {s}/grades.json --out {o} --no-similarity",
    "report-feedback": "report {s}/grades.json --out {s}/report --feedback {o} --no-similarity",
    "grade-json": "grade --merge {s}/part.json --json {o}",
    "grade-csv": "grade --merge {s}/part.json --csv {o}",
    "grade-report": "grade --merge {s}/part.json --json {s}/g.json --report {o}",
    "release": "release {o}",
    "export-nbgrader": "export-nbgrader {o}",
}


def _bad_output(scratch: Path, kind: str) -> str:
    if kind == "read-only":  # sysfs: no new file, root included (permission bits do not stop root)
        return "/sys/course-utils-test-output"
    if kind == "under-a-file":
        return str(scratch / "a-file" / "out")
    if kind == "device":
        return "/dev/null"
    if kind == "empty":
        return ""
    if kind == "not-utf8":
        return os.fsdecode(os.fsencode(scratch) + b"/out-\xff")
    return _bad_path(scratch, kind, ".out")


@pytest.mark.parametrize("kind, words", BAD_OUTPUTS, ids=[k for k, _ in BAD_OUTPUTS])
@pytest.mark.parametrize("writer", WRITERS)
def test_an_output_that_cannot_be_written_is_refused_before_any_work(door, capsys, writer, kind,
                                                                     words):
    """Is every output a command writes checked before its work starts: a FIFO, a link, a name
    the system cannot carry, a read-only folder, a file where a folder must be, a device?"""
    output = _bad_output(door, kind)
    argv = [part.format(s=door, o=output) for part in WRITERS[writer].split()]
    _refused(door, capsys, argv, words)
    assert not os.path.lexists("/sys/course-utils-test-output")


# (id, command line, words): an output that is an input, or lies inside one
OVERWRITES = [
    ("grade-json-is-the-part", "grade --merge {s}/part.json --json {s}/part.json",
     "the --merge part this command reads"),
    ("grade-csv-is-a-hard-link-of-the-part", "grade --merge {s}/part.json --csv "
     "{s}/part-hard-link.json", "through a link or a hard link"),
    ("grade-json-and-csv-the-same", "grade --merge {s}/part.json --json {s}/g.out --csv {s}/g.out",
     "where --json goes too"),
    ("grade-json-is-the-submission", "grade {s}/subs/alice/00-install-check.ipynb --json "
     "{s}/subs/alice/00-install-check.ipynb", "the submission this command reads"),
    ("grade-json-inside-the-submissions", "grade {s}/subs --json {s}/subs/grades.json",
     "the submissions folder this command reads"),
    ("grade-feedback-inside-the-submissions", "grade {s}/subs --json {s}/g.json --feedback "
     "{s}/subs/alice/feedback", "the submissions folder this command reads"),
    ("gradebook-out-is-the-grades", "gradebook gradescope {s}/grades.json --out {s}/grades.json",
     "the grades file this command reads"),
    ("gradebook-out-is-the-roster", "gradebook canvas {s}/grades.json --roster {s}/roster.csv "
     "--out {s}/roster.csv", "the roster this command reads"),
    ("gradebook-out-links-to-the-grades", "gradebook gradescope {s}/grades.json --out "
     "{s}/grades-link.json", "the grades file this command reads"),
    ("report-feedback-holds-the-grades", "report {s}/grades.json --out {s}/report --feedback {s}",
     "which could be overwritten"),
    ("report-out-writes-the-grades", "report {s}/report-in/totals.csv --out {s}/report-in",
     "the grades file this command reads"),
    ("export-over-the-spec-source", "export factories:tiny {s}/factories.py --input-shape 1,8,8",
     "the source of factories:tiny this command reads"),
    ("export-nbgrader-into-exercises", "export-nbgrader {s}/course/exercises/nbgrader",
     "which `release` ships to students"),
    ("export-nbgrader-into-notebooks", "export-nbgrader {s}/course/notebooks/nbgrader",
     "source notebooks this command reads"),
    ("release-into-the-repository", "release {s}/course/student-copy", "inside the course repository"),
]


@pytest.mark.parametrize("command, words", [c[1:] for c in OVERWRITES], ids=[c[0] for c in OVERWRITES])
def test_an_output_never_overwrites_an_input_nor_lands_in_one(door, capsys, command, words):
    """Is an output that is an input (the same name, a link, a hard link), or that lies in a folder
    the command reads or ships, refused before any work (exit 1, every input unchanged)?"""
    (door / "report-in").mkdir()
    (door / "report-in" / "totals.csv").write_text(json.dumps([GRADE_ROW]))
    _refused(door, capsys, [part.format(s=door) for part in command.split()], words)


# (command line with {v}, values it must refuse, words)
NUMBERS = [
    ("export factories:tiny {s}/o.onnx --input-shape 1,8,8 --example-batch {v}",
     ["0", "-5", "1.5", "nan", "5000", "x"], "--example-batch must be a whole number from 1"),
    ("export factories:tiny {s}/o.onnx --opset {v}", ["0", "nan", "1e3", "100"],
     "--opset must be a whole number from 1 to 99"),
    ("export factories:tiny {s}/o.onnx --input-shape {v}", ["0,8,8", "1,-8", "4611686018427387904",
                                                           "a,b", ","], "--input-shape must be"),
    ("verify {s}/models/small-cnn.onnx factories:tiny --rtol {v}", ["nan", "inf", "-0.5", "1e400"],
     "--rtol must be a finite number >= 0"),
    ("verify {s}/models/small-cnn.onnx factories:tiny --atol {v}", ["nan", "-5", "x"],
     "--atol must be a finite number >= 0"),
    ("verify {s}/models/small-cnn.onnx factories:tiny --batch-sizes {v}", ["0", "1,-2", "99999", "x"],
     "--batch-sizes must be whole numbers from 1 to 4,096"),
    ("netron {s}/models/small-cnn.onnx --port {v}", ["0", "65536", "-5", "nan", "80.5"],
     "--port must be a whole number from 1 to 65,535"),
    ("bench --threads {v}", ["0", "-5", "100000", "nan"], "--threads must be a whole number from 1"),
    ("providers --placement {s}/models/small-cnn.onnx --threads {v}", ["0", "100000", "x"],
     "--threads must be a whole number from 1"),
    ("selfcheck {s}/subs/alice/00-install-check.ipynb --timeout {v}", ["0", "-5", "nan", "1e9"],
     "--timeout must be a whole number from 1 to 86,400"),
    ("grade {s}/subs --timeout {v}", ["0", "-5", "nan", "inf"], "--timeout must be a whole number"),
    ("grade {s}/subs --budget {v}", ["-5", "0", "nan", "inf", "1e12"],
     "--budget must be a finite number from 1 to 604800"),
    ("grade {s}/subs --jobs {v}", ["0", "-1", "100000", "1.5"], "--jobs must be a whole number from 1"),
    ("grade {s}/subs --memory-mb {v}", ["0", "-1", "10", "nan"],
     "--memory-mb must be a whole number from 1,024"),
    ("grade {s}/subs --shard {v}", ["0/4", "5/4", "1/0", "x", "1/2/3"], "--shard must be K/N"),
    ("report {s}/grades.json --out {s}/r --threshold {v}", ["nan", "-0.5", "1.5", "inf"],
     "--threshold must be a finite number from 0 to 1"),
]


@pytest.mark.parametrize("command, values, words", NUMBERS, ids=[c[0].split(" {")[0].split()[0] + " "
                                                                  + c[0].split()[-2] for c in NUMBERS])
def test_a_number_out_of_its_range_is_refused_by_its_option(door, capsys, command, values, words):
    """Is every numeric option's value checked by its argparse type (finite, within its stated
    range), as one error line naming the option and the range, before any work?"""
    for value in values:
        _refused(door, capsys, [part.format(s=door, v=value) for part in command.split()], words)


def test_every_numeric_option_goes_through_the_door_and_states_its_range():
    """Does no option take a bare int or float, and does each checked one say its range in --help?"""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for command, subparser in sub.choices.items():
        for action in subparser._actions:
            assert action.type not in (int, float), f"{command} {action.option_strings}: bare {action.type}"
            if getattr(action.type, "__module__", "") == "course_utils.options" and \
                    action.type.__name__ != "path":
                checked += 1
                assert re.search(r"from \S+ to \S+|>= \S+", action.help or ""), \
                    f"{command} {action.option_strings}: no range in its help"
    assert checked >= 15


def _grades_with(kind: str):
    row = json.loads(json.dumps(GRADE_ROW))
    if kind == "points-text":
        row["exercises"]["00.1"]["points"] = "two"
    elif kind == "exercise-not-object":
        row["exercises"]["00.1"] = [1, 2]
    elif kind == "notes-number":
        row["notes"] = 5
    elif kind == "passed-text":
        row["exercises"]["00.1"]["passed"] = "yes"
    elif kind == "seconds-nan":
        return json.dumps([row]).replace('"seconds": 1.5', '"seconds": NaN')
    elif kind == "not-a-list":
        return json.dumps(row)
    elif kind == "deep":
        return "[" * 100_000 + "]" * 100_000
    elif kind == "deep-enough-to-parse":
        row["notes"] = json.loads("[" * 500 + "]" * 500)
    elif kind == "not-json":
        return "student,points\nalice,1\n"
    return json.dumps([row])


# (kind, words)
BAD_GRADES = [
    ("points-text", "'points' is str, expected a number"),
    ("exercise-not-object", "exercise '00.1' is list, expected an object"),
    ("notes-number", "'notes' is int, expected a list of texts"),
    ("passed-text", "'passed' is str, expected true or false"),
    ("seconds-nan", "'seconds' is float, expected a number"),
    ("not-a-list", "is not a grades file"),
    ("deep", "nests its JSON deeper than Python can read"),
    ("deep-enough-to-parse", "more than 16 levels deep"),
    ("not-json", "is not valid JSON"),
]
GRADES_READERS = {
    "report": "report {g} --out {s}/report",
    "gradebook-gradescope": "gradebook gradescope {g} --out {s}/results.json",
    "gradebook-canvas": "gradebook canvas {g} --roster {s}/roster.csv --out {s}/canvas.csv",
    "grade-merge": "grade --merge {g} --json {s}/merged.json",
}


@pytest.mark.parametrize("kind, words", BAD_GRADES, ids=[k for k, _ in BAD_GRADES])
@pytest.mark.parametrize("reader", GRADES_READERS)
def test_a_grades_file_of_another_shape_is_refused_with_the_field(door, capsys, reader, kind, words):
    """Is a grades file whose fields have other types, that nests 100,000 levels deep or is not
    JSON refused with the row and field named (never a RecursionError or a traceback)?"""
    text = _grades_with(kind)
    if reader == "grade-merge" and text.startswith("[{"):
        rows = json.loads(text.replace("NaN", "null"))
        rows[0]["order"] = 0
        text = json.dumps(rows).replace('"seconds": null', '"seconds": NaN')
    (door / "bad-grades.json").write_text(text)
    argv = [part.format(s=door, g=door / "bad-grades.json") for part in GRADES_READERS[reader].split()]
    _refused(door, capsys, argv, words)


# (encoding, separator): rosters as spreadsheets save them
ROSTER_FORMATS = [("utf-8", ","), ("utf-8-sig", ","), ("utf-16", ","), ("utf-16", "\t"),
                  ("cp1252", ","), ("cp1252", ";"), ("utf-8", ";")]


@pytest.mark.parametrize("encoding, separator", ROSTER_FORMATS)
def test_a_roster_as_excel_saves_it_is_read(door, capsys, encoding, separator):
    """Is a roster in UTF-8 (BOM or not), UTF-16 or Windows-1252, separated by commas,
    semicolons or tabs, read with its accented names intact?"""
    (door / "excel.csv").write_bytes(ROSTER.replace(",", separator).encode(encoding))
    out = door / "canvas.csv"
    assert main(["gradebook", "canvas", str(door / "grades.json"), "--roster",
                 str(door / "excel.csv"), "--out", str(out)]) == 0, capsys.readouterr().err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[1].startswith("José Núñez,7,s7,alice,A,1")


@pytest.mark.parametrize("content, words", [
    ((ROSTER + "x" * 140_000 + ",1,2,3,A\n").encode(), "a field of more than 128 KiB"),
    (b"Student,ID\n\x81\x8d\x8f\x90\xff\xfe,1\n", "is neither UTF-8, UTF-16 nor Windows-1252"),
    ("Name,ID\nalice,1\n".encode(), "lacks the column(s)"),
], ids=["long-field", "no-known-encoding", "no-columns"])
def test_a_roster_that_cannot_be_read_is_refused_with_the_line(door, capsys, content, words):
    """Is a roster with a field over 128 KiB, an unknown encoding or without Canvas' columns
    refused in one line that says where and what to give instead?"""
    (door / "bad-roster.csv").write_bytes(content)
    _refused(door, capsys, ["gradebook", "canvas", str(door / "grades.json"), "--roster",
                            str(door / "bad-roster.csv"), "--out", str(door / "canvas.csv")], words)


def _notebook_with(kind: str) -> str:
    nb = json.loads((ROOT / "exercises" / "00-install-check.ipynb").read_text(encoding="utf-8"))
    if kind == "metadata-list":
        nb["metadata"] = [1, 2]
    elif kind == "source-number":
        nb["cells"][1]["source"] = 5
    elif kind == "source-object":
        nb["cells"][1]["source"] = {"a": 1}
    elif kind == "cells-text":
        nb["cells"] = "cells"
    elif kind == "nbformat-3":
        nb["nbformat"] = 3
    elif kind == "deep":
        return "[" * 100_000 + "]" * 100_000
    elif kind == "latin-1":
        return json.dumps(nb, ensure_ascii=False).replace("Exercise", "Exércise")
    return json.dumps(nb)


@pytest.mark.parametrize("kind, words", [
    ("metadata-list", "not a valid nbformat 4 notebook (at metadata"),
    ("source-number", "not a valid nbformat 4 notebook (at cells/1/source"),
    ("source-object", "not a valid nbformat 4 notebook (at cells/1/source"),
    ("cells-text", "its 'cells' are not a list of cells"),
    ("nbformat-3", "is not an nbformat 4 notebook"),
    ("deep", "nests its JSON deeper than Python can read"),
    ("latin-1", "is not UTF-8 text"),
])
def test_a_notebook_of_another_shape_is_refused_before_a_kernel_starts(door, capsys, kind, words):
    """Is a notebook whose metadata or cell sources have other types, that is not nbformat 4,
    nests 100,000 levels deep or is not UTF-8 refused by selfcheck in one line?"""
    path = door / f"{kind}.ipynb"
    text = _notebook_with(kind)
    path.write_bytes(text.encode("latin-1", "replace") if kind == "latin-1" else text.encode())
    _refused(door, capsys, ["selfcheck", str(path)], words)


def _onnx_with(path: Path, kind: str) -> Path:
    """A small model whose inputs or outputs are what ``kind`` names."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3])
    nodes, inputs, initializers = [helper.make_node("Identity", ["x"], ["y"])], [x], []
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])
    casts = {"bfloat16-output": TensorProto.BFLOAT16, "string-output": TensorProto.STRING}
    if kind in casts:
        nodes = [helper.make_node("Cast", ["x"], ["y"], to=casts[kind])]
        y = helper.make_tensor_value_info("y", casts[kind], ["b", 3])
    elif kind == "sequence-output":
        nodes = [helper.make_node("SequenceConstruct", ["x"], ["y"])]
        y = helper.make_tensor_sequence_value_info("y", TensorProto.FLOAT, None)
    elif kind == "unknown-element-type":
        y.type.tensor_type.elem_type = 99
    elif kind == "huge-dimension":
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 2**62])
        inputs = [x]
    elif kind == "subgraph-data-escaping":
        weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3])
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "12")):
            weight.external_data.add(key=key, value=value)
        branch = helper.make_graph([helper.make_node("Add", ["x", "w"], ["t"])], "then", [],
                                   [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["b", 3])],
                                   initializer=[weight])
        other = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [],
                                  [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["b", 3])])
        inputs = [x, helper.make_tensor_value_info("c", TensorProto.BOOL, [])]
        nodes = [helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=other)]
    elif kind == "no-outputs":
        y = None
    graph = helper.make_graph(nodes, "g", inputs, [y] if y is not None else [], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


# (kind, words verify says; what inspect's summary shows, or None: it refuses too)
ONNX_KINDS = [
    ("bfloat16-output", "has the element type bfloat16", "y: bfloat16[b, 3]"),
    ("string-output", "has the element type string", "y: string[b, 3]"),
    ("sequence-output", "is a sequence of tensors, not a tensor", "y: sequence_type[]"),
    ("unknown-element-type", "has the element type unknown element type 99",
     "y: unknown element type 99[b, 3]"),
    ("huge-dimension", "one sample holds 4,611,686,018,427,387,904 values", "x: float32[b, "),
    ("subgraph-data-escaping", "'../secret.bin', a place outside its folder", None),
    ("no-outputs", "has no outputs: there is nothing to compare", "nodes       1"),
]


@pytest.mark.parametrize("kind, verify_words, summary", ONNX_KINDS, ids=[k[0] for k in ONNX_KINDS])
def test_an_onnx_file_of_another_shape_is_one_clear_line(door, capsys, kind, verify_words, summary):
    """Does verify refuse a model it cannot compare (bfloat16, string or sequence outputs, an
    unknown element type, a 2**62 dimension, external data escaping from a subgraph, no
    outputs) in one line whose next step fits, and do inspect and providers --placement
    summarize or refuse it, never a traceback?"""
    path = _onnx_with(door / "models" / f"{kind}.onnx", kind)
    line = _refused(door, capsys, ["verify", str(path), "factories:tiny3"], verify_words)
    assert "batch sizes" not in line  # the file is the problem, not the batch
    # Where each node runs: a file ONNX Runtime runs is placed, one it cannot is one line.
    status = main(["providers", "--placement", str(path)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and (status, errors) == (0, []) or \
        (status == 1 and len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0]), err
    if summary is None:
        _refused(door, capsys, ["inspect", str(path)], verify_words)
        return
    status = main(["inspect", str(path)])
    captured = capsys.readouterr()
    assert status in (0, 1) and "Traceback" not in captured.err and summary in captured.out


# (id, command line, words): models whose code gives no model or exits
EXPORT_RESULTS = [
    ("export-forward-returns-none", "export factories2:returns_none {s}/o.onnx --input-shape 3",
     "forward returned None: an ONNX graph needs at least one output tensor"),
    ("verify-forward-returns-none", "verify {s}/models/small-cnn.onnx factories2:returns_none",
     "forward returned None, so there is nothing to compare"),
    ("bench-forward-returns-none", "bench --model factories2:returns_none", "forward returned None"),
    ("export-forward-exits", "export factories2:forward_exits {s}/o.onnx --input-shape 3",
     "forward raised SystemExit: 3"),
    ("verify-forward-exits", "verify {s}/models/small-cnn.onnx factories2:forward_exits",
     "raised SystemExit(3)"),
    ("bench-forward-exits", "bench --model factories2:forward_exits", "forward raised SystemExit: 3"),
    ("export-factory-exits", "export factories:exits {s}/o.onnx --input-shape 1,8,8",
     "factories:exits() raised SystemExit"),
    ("verify-factory-exits", "verify {s}/models/small-cnn.onnx factories:exits", "raised SystemExit"),
    ("bench-factory-exits", "bench --model factories:exits", "raised SystemExit"),
    ("export-factory-base-exception", "export factories2:raises_base_exception {s}/o.onnx",
     "raised Stop: a BaseException of its own"),
    ("verify-factory-base-exception", "verify {s}/models/small-cnn.onnx "
     "factories2:raises_base_exception", "raised Stop"),
]


@pytest.mark.parametrize("command, words", [c[1:] for c in EXPORT_RESULTS],
                         ids=[c[0] for c in EXPORT_RESULTS])
def test_a_model_without_outputs_or_that_exits_is_an_error_not_a_silent_exit(door, capsys, command,
                                                                            words):
    """Is a forward that returns None, and a factory or forward that raises SystemExit (or another
    BaseException), one error line with the reason, exit 1, never a silent exit 0?"""
    _refused(door, capsys, [part.format(s=door) for part in command.split()], words)


# (id, command line, words): advice that fits the command
NEXT_STEPS = [
    ("export-spec-as-a-path", "export {s}/factories.py:tiny {s}/o.onnx",
     "names a file path, but a spec names a module by its import name"),
    ("verify-spec-as-a-path", "verify {s}/models/small-cnn.onnx ./factories.py:tiny",
     "write factories:tiny"),
    ("bench-model-as-an-onnx-file", "bench --model {s}/models/small-cnn.onnx",
     "an .onnx file is what export writes, not what it reads"),
    ("bench-model-not-an-image-model", "bench --model factories:tiny",
     "bench times image models that take one (batch, 3, H, W) tensor"),
    ("verify-huge-dimension-in-the-file", "verify {s}/models/huge.onnx factories:tiny",
     "a damaged file, or a size exported by mistake?"),
]


@pytest.mark.parametrize("command, words", [c[1:] for c in NEXT_STEPS], ids=[c[0] for c in NEXT_STEPS])
def test_the_next_step_is_one_the_command_can_take(door, capsys, command, words):
    """Does each refusal give advice that can help (no option the command lacks, no blame on a
    module for a file path, no smaller batch sizes for a damaged file)?"""
    _onnx_with(door / "models" / "huge.onnx", "huge-dimension")
    line = _refused(door, capsys, [part.format(s=door) for part in command.split()], words)
    assert "--input-shape" not in line and "batch sizes" not in line
