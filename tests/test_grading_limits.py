"""Tests for the grader's bounds: forged answer data, what feedback quotes, cgroups, uids, a long TMPDIR.

The kernel here is a stand-in that writes a forged capture, as a student who
replaced ``answers.capture`` would; everything after that (bounded reads, decoding
and checks in a limited child) is the grader's own code (``verdicts.read_verdict``).
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.grading import load_hidden_checks
from course_utils.grading.results import NotebookGrade, payload, safe_text, write_results
from course_utils.grading.sandbox import CellResult
from course_utils.grading.verdicts import read_verdict


class ForgingKernel:
    """Stands for a kernel whose capture writes ``tree`` (and ``files``) instead of the answer."""

    def __init__(self, base: Path, payload: dict, files=None):
        self.workdir, self.iodir, self.inbox_dir = base / "work", base / "io", base / "in"
        for folder in (self.workdir, self.iodir, self.inbox_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.io_path, self.inbox_path = str(self.iodir), str(self.inbox_dir)
        self.payload, self.files = payload, files or {}

    def alive(self):
        return True

    def run(self, code, limit, silent=False):
        folder = self.iodir / re.search(r"capture-[0-9a-f]+", code).group(0)
        folder.mkdir()
        (folder / "answer.json").write_text(json.dumps(self.payload))
        for name, data in self.files.items():
            (folder / name).write_bytes(data)
        return CellResult("ok")


def _verdict(tmp_path, exercise, payload, files=None, **kwargs):
    load_hidden_checks()
    kernel = ForgingKernel(tmp_path, payload, files)
    return read_verdict(kernel, exercise, tmp_path / "scratch", limit=30, **kwargs)


@pytest.mark.parametrize("payload, expected", [
    ({"value": {"$dict": [[1]]}}, "malformed"),
    ({"value": {"$dict": [["onnx", {"$npy": "../../etc/passwd"}]]}}, "malformed"),
    ({"value": {"$set": [[1, 2]]}}, "unhashable"),
    ({"value": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}, "nested too deeply"),
    ({"value": [0] * 500_000}, "too large"),
    ({"value": [{"$opaque": f"T{i}"} for i in range(300_000)]}, "pass the function itself"),
    ({"value": {"$dict": [["onnx", {"$file": "x", "given": "x"}]] * 20}}, "could not be read"),
    ({"error": "\x1b[2Jtotal 52/52" + "x" * 10_000}, "could not be read as data"),
], ids=["bad-dict", "array-path", "unhashable-set", "deep", "many-items", "type-names", "missing-file",
        "long-error"])
def test_forged_capture_fails_that_exercise_cleanly(tmp_path, payload, expected):
    """Does each forged capture fail 00.1 with a clean, short, escaped message (no traceback, no crash)?"""
    from course_utils import answers

    known_types = len(answers._OPAQUE_TYPES)
    verdict = _verdict(tmp_path, "00.1", payload)
    assert not verdict.passed and expected in verdict.feedback, verdict.feedback
    assert "\x1b" not in safe_text(verdict.feedback) and len(safe_text(verdict.feedback)) <= 600
    assert len(answers._OPAQUE_TYPES) == known_types  # decoded in the child, not here


def test_an_array_whose_header_lies_is_refused(tmp_path):
    """Is an .npy whose header claims more data than the file holds refused without allocating it?"""
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
    header = (header + " " * (117 - len(header)) + "\n").encode()
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(64)
    verdict = _verdict(tmp_path, "00.1", {"value": {"$dict": [["onnx", {"$npy": "a0.npy"}]]}}, {"a0.npy": npy})
    assert "does not hold the data its header claims" in verdict.feedback


def test_student_strings_are_quoted_short_or_not_at_all(tmp_path):
    """Is a long provider name quoted as a <= 40-character excerpt, and not at all once a reference
    ran (the check's own words only, each value a hole)?"""
    name = "Evil\x1bProvider" + "x" * 5000
    answer = {"value": {"$dict": [["cpu", name], ["nvidia_gpu", ["CUDAExecutionProvider"]]]}}
    quoted = _verdict(tmp_path / "a", "01.1", answer).feedback
    assert "xxxx" in quoted and "x" * 40 not in quoted and "\x1b" not in quoted, quoted
    withheld = _verdict(tmp_path / "b", "01.1", answer, quote=False).feedback
    assert withheld == "\u2026 is not a provider name; copy names from get_all_providers()", withheld


@pytest.mark.parametrize("tree", [
    {"$dict": [["onnx", {"$path": "LEAK fair_options = ort.SessionOptions()"}], ["onnxruntime", "1"]]},
    {"$opaque": "LEAK fair_options = ort.SessionOptions()"},
    {"$facts": "LEAK fair_options = ort.SessionOptions()", "v": {"$dict": [["LEAK", 1]]}},
    {"$dict": [["onnx", 1.0], ["onnxruntime", 20220101.5]]},
], ids=["path", "type-name", "facts", "numbers"])
def test_nothing_of_an_answer_reaches_feedback_once_a_reference_ran(tmp_path, tree):
    """Once a reference ran in the kernel, do a path, a type's name, a facts entry and numbers
    built from it leave no trace in the feedback (the check's fixed words only)?"""
    quoted = _verdict(tmp_path / "a", "00.1", {"value": tree}).feedback
    withheld = _verdict(tmp_path / "b", "00.1", {"value": tree}, quote=False).feedback
    assert "LEAK" not in withheld and "2022" not in withheld and "\u2026" in withheld, withheld
    assert quoted != withheld


def test_a_missing_files_name_is_quoted_short(tmp_path):
    """Is a file answer's missing path, holding a forged score line, quoted in at most 40 characters?"""
    forged = "artifacts/" + "\nTOTAL 61/61 all checks passed" * 20 + ".onnx"
    verdict = _verdict(tmp_path, "02.1", {"value": {"$missing_file": forged}})
    shown = verdict.feedback.split("there is no file at ")[1].split(";")[0]
    assert len(shown) <= 40 and "\n" not in verdict.feedback, verdict.feedback


def test_records_escape_control_characters_and_odd_paths(tmp_path):
    """Do a lone surrogate, an ESC sequence and a newline in a record still give one-line CSV rows?"""
    grade = NotebookGrade(os.fsdecode(b"sub/\xff/00.ipynb"), "eve\x1b[2J", error="bad\nline\x07")
    grade.notes.append("\x1b]0;title\x07" + "y" * 5000)
    out = tmp_path / "grades.csv"
    write_results(payload([grade]), tmp_path / "grades.json", out)
    text = out.read_text(encoding="utf-8")
    assert "\x1b" not in text and text.count("\n") == 2
    assert "\\udcff" in json.loads((tmp_path / "grades.json").read_text())[0]["path"]
    assert len(grade.notes[0]) <= 600 and "\\x1b" in grade.notes[0]


def test_a_notebook_that_bloats_when_parsed_is_refused(tmp_path):
    """Is a notebook of millions of empty objects refused by the limited parser, not by the grader's memory?"""
    from course_utils.grading.submissions import parse_notebook

    data = b'{"cells": [' + b"{}," * (6 * 2**20) + b'{}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    with pytest.raises(ValueError, match="not a readable Jupyter notebook"):
        parse_notebook(data)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups and sandbox uids need root")


@needs_root
def test_two_graders_never_share_a_sandbox_uid():
    """Does a uid claimed by one process stay out of reach of another until it is given back?"""
    from course_utils.grading.limits import claim_uid

    uid, fd = claim_uid(123)
    try:
        other = subprocess.run([sys.executable, "-c", "from course_utils.grading.limits import claim_uid; "
                                "print(claim_uid(123)[0])"], capture_output=True, text=True, check=True)
        assert int(other.stdout) != uid
    finally:
        os.close(fd)


@needs_root
def test_a_sandbox_cgroup_caps_memory_and_processes():
    """Where cgroups are usable, does a sandbox's group take its limits, hold its processes and go away?"""
    from course_utils.grading.limits import find_cgroups

    tree, line = find_cgroups(f"course-grade-test-{os.getpid()}")
    if tree is None:
        pytest.skip(line)
    try:
        group = tree.group("t", 256 * 2**20, 32, 1.0)
        child = subprocess.Popen(["sleep", "30"], preexec_fn=group.join)
        assert child.pid in group.pids()
        hog = subprocess.Popen([sys.executable, "-c", "b = bytearray(1024 * 2**20); b[::4096] = b'x' * len(b[::4096])"],
                               preexec_fn=group.join)
        assert hog.wait(60) == -9 and group.hit_memory_cap()  # 1 GiB in a 256 MiB group
        group.remove()
        assert child.wait(5) == -9 and all(not d.exists() for d in group.dirs.values())
    finally:
        tree.remove()
    assert all(not p.exists() for p in tree.parents.values())


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_a_long_tmpdir_still_grades(tmp_path):
    """Under a TMPDIR too long for a socket's path (107 bytes at most), do the sandboxed kernel
    and the check processes still start, and is nothing left there?"""
    from conftest import ROOT

    long_tmp = tmp_path / ("t" * 90)
    long_tmp.mkdir()
    out = tmp_path / "grades.json"
    done = subprocess.run([sys.executable, "-m", "course_utils", "grade",
                           str(ROOT / "tests" / "files" / "hostile" / "forged-log.ipynb"), "--json", str(out)],
                          env={**os.environ, "TMPDIR": str(long_tmp)}, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    (row,) = json.loads(out.read_text())
    assert row["error"] is None, (row["error"], done.stderr[-2000:])
    feedback = row["exercises"]["00.1"]["feedback"]
    assert not row["exercises"]["00.1"]["passed"] and "grader failed" not in feedback, feedback
    assert os.listdir(long_tmp) == []


def test_hard_links_are_folded_into_one_record(tmp_path):
    """Are 600 hard links of one notebook folded into the record of the name that is the course
    notebook's (one note lists them), and a classmate's link to it one record with an error?
    (The hostile batch grades such a folder and keeps the grader's peak under 400 MB.)"""
    from course_utils.build import source_notebooks
    from course_utils.grading.submissions import find_submissions, fold_hard_links

    subs = tmp_path / "submissions"
    (subs / "mallory").mkdir(parents=True)
    (subs / "trent").mkdir()
    original = subs / "mallory" / "00-copy-first.ipynb"
    original.write_text("{}")
    for index in range(600):
        os.link(original, subs / "mallory" / f"00-copy-{index:03}.ipynb")
    os.link(original, subs / "mallory" / "00-install-check.ipynb")
    os.link(original, subs / "trent" / "00-install-check.ipynb")
    found = fold_hard_links(find_submissions([subs]), {p.stem: p for p in source_notebooks()})
    mallory, trent = found
    assert (mallory.student, mallory.path.name, mallory.error) == ("mallory", "00-install-check.ipynb", None)
    assert len(mallory.notes) == 1 and "601 other name(s) (hard links)" in mallory.notes[0]
    assert "and 596 more" in mallory.notes[0] and len(mallory.notes[0]) < 400
    assert "the same file as" in trent.error and "'mallory'" in trent.error


def _external(name, location, dims=(1,)):
    """An int64 tensor whose 8 bytes of data ONNX says lie in the file ``location``."""
    from onnx import TensorProto

    tensor = TensorProto(name=name, data_type=TensorProto.INT64, dims=list(dims))
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        tensor.external_data.add(key=key, value=value)
    return tensor


def _models_naming(location):
    """One model per place a tensor can sit, each naming ``location`` as its external data."""
    from onnx import TensorProto, helper

    out = helper.make_tensor_value_info("y", TensorProto.INT64, None)

    def model(nodes, **graph):
        g = helper.make_graph(nodes, "g", [], [out], **graph)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)

    sparse = helper.make_sparse_tensor(_external("s", location), helper.make_tensor("i", TensorProto.INT64, [1], [0]), [1])
    sparse_model = model([helper.make_node("Identity", ["s"], ["y"])])
    sparse_model.graph.sparse_initializer.append(sparse)
    branch = helper.make_graph([helper.make_node("Constant", [], ["y"], value=_external("k", location))], "b", [], [out])
    listed = helper.make_node("Identity", ["x"], ["y"])
    listed.attribute.add(name="t", type=9, tensors=[_external("t", location)])  # TENSORS
    return {
        "initializer": model([helper.make_node("Identity", ["c"], ["y"])], initializer=[_external("c", location)]),
        "sparse-initializer": sparse_model,
        "attribute": model([helper.make_node("Constant", [], ["y"], value=_external("k", location))]),
        "attribute-list": model([listed]),
        "subgraph": model([helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)],
                          initializer=[helper.make_tensor("cond", TensorProto.BOOL, [], [True])]),
    }


def test_a_model_naming_data_outside_its_file_is_refused_by_the_checks(tmp_path, monkeypatch):
    """Is a model that names external data from any kind of tensor (a sparse initializer, an
    attribute, a subgraph) refused by the checks' door with one clean message, where ONNX Runtime,
    given the same bytes, reads the named file from the working folder?"""
    import onnxruntime as ort

    from course_utils.checks import CheckFailed
    from course_utils.exercise_checks.export import answer_session, load_answer_onnx
    from course_utils.onnx_files import external_data_tensors

    (tmp_path / "secret.bin").write_bytes(b"SECRET!!")
    monkeypatch.chdir(tmp_path)
    for location in ("secret.bin", str(tmp_path / "secret.bin"), "../" + tmp_path.name + "/secret.bin"):
        for kind, model in _models_naming(location).items():
            assert external_data_tensors(model), kind
            path = tmp_path / "answer" / f"{kind}.onnx"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(model.SerializeToString())
            with pytest.raises(CheckFailed, match="keeps tensor data in another file"):
                load_answer_onnx(path)
            with pytest.raises(CheckFailed, match="keeps tensor data in another file"):
                answer_session(model)
    leaked = ort.InferenceSession(_models_naming("secret.bin")["sparse-initializer"].SerializeToString(),
                                  providers=["CPUExecutionProvider"]).run(None, {})[0]
    assert leaked.tobytes() == b"SECRET!!"  # what the door is for


def test_a_check_runs_in_an_empty_folder_of_its_own(tmp_path, monkeypatch):
    """Does a limited child start in an empty working folder, not the grader's, and leave none behind?"""
    from course_utils.grading.isolated import run_limited

    monkeypatch.chdir(tmp_path)
    folder, listing = run_limited(_where_am_i, (), seconds=60, memory_bytes=2**30)
    assert folder != str(tmp_path) and listing == [] and not os.path.exists(folder)


def _where_am_i(conn):
    return os.getcwd(), os.listdir(".")


def test_a_files_name_is_quoted_short(tmp_path):
    """Is a file answer whose name holds a forged score line copied under a name of at most 40
    characters, so that a check quoting it quotes no more?"""
    name = "x\nTOTAL 61 of 61, all checks passed" * 6 + ".onnx"
    kernel = ForgingKernel(tmp_path, {"value": {"$file": name, "given": name}}, {})
    (kernel.workdir / name).write_bytes(b"not a model")
    load_hidden_checks()
    verdict = read_verdict(kernel, "02.1", tmp_path / "scratch", limit=30)
    assert "is not a readable ONNX file" in verdict.feedback, verdict.feedback
    assert len(verdict.feedback.split(" is not a readable")[0]) <= 40 and "\n" not in verdict.feedback
