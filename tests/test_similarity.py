"""Tests for course_utils/grading/similarity.py: is a renamed copy flagged, and independent work not?"""
import os
import shutil

import nbformat
import pytest

from conftest import ROOT
from course_utils.grading.similarity import (MIN_COPIED, REFERENCE_COPY_NOTE, THRESHOLD, find_similar,
                                             normalise_code, reference_copy_note, reference_matches)

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


# ------------------------------------------------------------------ equal to the reference solutions

def _code_cells(path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def _honest_cells(stem: str) -> list[str]:
    """The exercises notebook solved with the students' own answers (the alternatives of the
    hidden checks' CASES), the first exercise left as shipped, as the sandboxed test does."""
    from test_alternative_answers import load_alternatives

    answers = load_alternatives(stem)
    cells = []
    for source in _code_cells(ROOT / "exercises" / f"{stem}.ipynb"):
        exercise = next((e for e in answers if f"# Exercise {e} " in source), None)
        if exercise:
            source = "\n".join(answers[exercise] if line.strip().startswith("raise NotImplementedError") else line
                               for line in source.splitlines())
        cells.append(source)
    return cells


@pytest.mark.parametrize("stem", [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))])
def test_a_copied_solutions_notebook_is_noted_and_honest_answers_are_not(stem):
    """Is a copy of solutions/NN noted as equal to the reference on every exercise (where the
    notebook has at least MIN_COPIED of them), and the same notebook solved with students' own
    answers not noted?"""
    source = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    copied = _code_cells(ROOT / "solutions" / f"{stem}.ipynb")
    matched, attempted, _ = reference_matches(copied, source, stem)
    assert matched == attempted and matched
    note = reference_copy_note(copied, source, stem)
    if len(matched) < MIN_COPIED:  # a notebook of one exercise: one equal answer is never a flag
        assert note is None
    else:
        assert note.startswith(f"{REFERENCE_COPY_NOTE} in {len(matched)} of {len(matched)} attempted exercises")
    honest = _honest_cells(stem)
    assert reference_matches(honest, source, stem)[0] == [] and reference_copy_note(honest, source, stem) is None
    assert reference_copy_note(_code_cells(ROOT / "exercises" / f"{stem}.ipynb"), source, stem) is None


def test_one_obvious_answer_equal_to_the_reference_is_no_flag():
    """Does a student whose one-line answer happens to be the reference's, the rest their own, go unnoted,
    while one who rewrote a single exercise of a copied notebook is still noted?"""
    stem = "02-export-and-verify"
    source = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    honest, copied = _honest_cells(stem), _code_cells(ROOT / "solutions" / f"{stem}.ipynb")
    first = next(i for i, c in enumerate(copied) if "# Exercise 02.2 " in c)
    mixed = [copied[first] if "# Exercise 02.2 " in c else c for c in honest]
    assert reference_matches(mixed, source, stem)[0] == ["02.2"]
    assert reference_copy_note(mixed, source, stem) is None
    rewritten = [next(h for h in honest if "# Exercise 02.3 " in h) if "# Exercise 02.3 " in c else c
                 for c in copied]
    assert "in 7 of 8 attempted exercises" in reference_copy_note(rewritten, source, stem)


def test_the_grader_notes_a_copy_and_keeps_its_score(tmp_path, monkeypatch):
    """Does grading a copied solutions notebook add the note to its record, with the score the
    checks gave (here every check passes, through a stand-in kernel), and an untouched one not?"""
    from course_utils.checks import Verdict
    from course_utils.grading import grader, sandbox
    from course_utils.grading.submissions import Submission

    class Kernel:  # runs nothing: every cell ends "ok"
        def __init__(self, *args):
            pass

        def start(self, limit):
            pass

        def alive(self):
            return True

        def run(self, code, limit, silent=False):
            return sandbox.CellResult("ok")

        def kill(self):
            pass

    monkeypatch.setattr(sandbox, "SandboxedKernel", Kernel)
    monkeypatch.setattr(grader, "read_verdict",
                        lambda kernel, exercise, *args, **kwargs: Verdict(exercise, True, "all checks passed"))
    stem = "01-execution-providers"
    grades = {}
    for student, origin in [("copier", "solutions"), ("fresh", "exercises")]:
        path = tmp_path / student / f"{stem}.ipynb"
        path.parent.mkdir()
        shutil.copy(ROOT / origin / path.name, path)
        sub = Submission(path, student, notebook=stem, code=_code_cells(path))
        grades[student] = grader._grade_one(  # the grading of one submission, without the sandbox
            sub, {stem: ROOT / "notebooks" / path.name}, 30, libdir=tmp_path, limits=sandbox.KernelLimits(),
            sandboxed=False, uid=61000, budget=60)
    copier, fresh = grades["copier"], grades["fresh"]
    assert any(n.startswith(REFERENCE_COPY_NOTE) for n in copier.notes), copier.notes
    assert copier.points == copier.max_points and not any(REFERENCE_COPY_NOTE in n for n in fresh.notes)
