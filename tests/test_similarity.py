"""Tests for course_utils/grading/similarity.py: is a renamed copy flagged, and independent work not?"""
import os

import nbformat
import pytest

from conftest import ROOT
from course_utils.grading.similarity import THRESHOLD, find_similar, normalise_code

EXERCISES = ROOT / "exercises" / "00-install-check.ipynb"

# Two students' own answers to 00.1 and 00.2, both correct, written independently.
AUTHOR = {
    "00.1": 'import importlib\nversions = {name: importlib.import_module(name).__version__\n'
            '            for name in ("onnx", "onnxruntime")}',
    "00.2": 'target = "artifacts/tiny.onnx"\ntorch.onnx.export(tiny, (x,), target, input_names=["x"], verbose=False)\n'
            'import onnxruntime as rt\nsess = rt.InferenceSession(target, providers=["CPUExecutionProvider"])\n'
            'feed = {sess.get_inputs()[0].name: x.numpy()}\n(ort_out,) = sess.run(None, feed)\n'
            'torch_out = tiny(x).detach().numpy()\noutputs = (torch_out, ort_out)',
}
INDEPENDENT = {
    "00.1": 'import onnx, onnxruntime\nversions = dict()\nfor module in (onnx, onnxruntime):\n'
            '    versions[module.__name__] = module.__version__',
    "00.2": 'import numpy\nwith torch.no_grad():\n    reference = tiny(x)\n'
            'torch.onnx.export(tiny, (x,), "artifacts/tiny.onnx", input_names=["x"])\n'
            'import onnxruntime\nrunner = onnxruntime.InferenceSession("artifacts/tiny.onnx", '
            'providers=["CPUExecutionProvider"])\n'
            'result = runner.run([runner.get_outputs()[0].name], {"x": numpy.asarray(x)})\n'
            'outputs = (reference.numpy(), result[0])',
}
# The author's work copied: every local name renamed, comments added, spacing and quotes changed.
COPY = {
    "00.1": "# my own work\nimport importlib\nversions = {pkg : importlib.import_module(pkg).__version__ "
            "for pkg in ('onnx','onnxruntime')}  # a dict comprehension",
    "00.2": "path_of_model = 'artifacts/tiny.onnx'   # where it goes\n"
            "torch.onnx.export(tiny, (x, ), path_of_model, input_names=['x'], verbose=False)\n\n"
            "import onnxruntime as runtime\n"
            "s = runtime.InferenceSession(path_of_model, providers=['CPUExecutionProvider'])\n"
            "inputs = {s.get_inputs()[0].name : x.numpy()}\n(o2,) = s.run(None, inputs)\n"
            "o1 = tiny(x).detach().numpy()\noutputs = (o1, o2)",
}


def _submission(folder, student, answers):
    """The shipped exercises notebook with the NotImplementedError line of each answered exercise replaced."""
    nb = nbformat.read(EXERCISES, as_version=4)
    for cell in nb.cells:
        exercise = cell.metadata.get("course_utils", {}).get("exercise")
        if exercise in answers:
            cell.source = "\n".join(answers[exercise] if line.startswith("raise NotImplementedError") else line
                                    for line in cell.source.splitlines())
    path = folder / student / "00-install-check.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return {"path": str(path), "student": student, "notebook": "00-install-check", "error": None,
            "exercises": {}, "points": 0, "max_points": 3}


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    folder = tmp_path_factory.mktemp("similar")
    reference = {c.metadata["course_utils"]["exercise"]: c.source
                 for c in nbformat.read(ROOT / "solutions" / EXERCISES.name, as_version=4).cells
                 if "exercise" in c.metadata.get("course_utils", {})}
    rows = [_submission(folder, "author", AUTHOR), _submission(folder, "copier", COPY),
            _submission(folder, "independent", INDEPENDENT), _submission(folder, "fresh-1", {}),
            _submission(folder, "fresh-2", {})]
    for student in ("solved-1", "solved-2"):  # the reference itself, handed in by two students
        row = _submission(folder, student, {})
        nb = nbformat.read(row["path"], as_version=4)
        for cell in nb.cells:
            exercise = cell.metadata.get("course_utils", {}).get("exercise")
            cell.source = reference.get(exercise, cell.source)
        nbformat.write(nb, row["path"])
        rows.append(row)
    link = folder / "linked" / "00-install-check.ipynb"
    link.parent.mkdir()
    os.symlink(EXERCISES, link)
    huge = folder / "huge" / "00-install-check.ipynb"
    huge.parent.mkdir()
    with huge.open("wb") as handle:
        handle.truncate(21 * 2**20)
    garbage = folder / "garbage" / "00-install-check.ipynb"
    garbage.parent.mkdir()
    garbage.write_text('{"cells": [')
    rows += [{**rows[0], "student": name, "path": str(folder / name / "00-install-check.ipynb")}
             for name in ("linked", "huge", "garbage", "gone")]
    return find_similar(rows)


def test_renamed_copy_is_flagged(found):
    """Is the copy with renamed variables, new comments and other spacing flagged with its author?"""
    pair = next(p for p in found.pairs if set(p.students) == {"author", "copier"})
    assert pair.score >= THRESHOLD and pair.identical == ["00.1", "00.2"]


def test_independent_answers_and_the_reference_are_not_flagged(found):
    """Are two independent correct answers, two students handing in the reference and two untouched
    notebooks all left unflagged (only the copy pair is listed)?"""
    assert [set(p.students) for p in found.pairs] == [{"author", "copier"}]
    assert found.compared == 7


def test_unreadable_submissions_are_listed_not_compared(found):
    """Are a link, a 21 MB file, a broken file and a missing one skipped, each with its reason?"""
    reasons = {student: why for student, _, why in found.skipped}
    assert set(reasons) == {"linked", "huge", "garbage", "gone"}
    assert "larger than 20 MiB" in reasons["huge"] and "not a readable Jupyter notebook" in reasons["garbage"]


def test_normalising_ignores_names_comments_layout_and_quotes_but_not_logic():
    """Do renamed names, comments, blank lines and quote style vanish, while another operator stays visible?"""
    assert normalise_code("a = f(b)  # note\n\nc = 'x'") == normalise_code('z=f( y )\nw = "x"')
    assert normalise_code("a = b + 1") != normalise_code("a = b - 1")
    assert normalise_code("x.shape") == normalise_code("y.shape") != normalise_code("y.size")
    assert normalise_code("def f(:\n  return ((") != []  # not Python: still compared, word by word
