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
    ({"value": [{"$opaque": f"T{i}"} for i in range(300_000)]}, "expected a dict"),
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
    """Is a long provider name quoted as a <= 40-character excerpt, and only by its length once a reference ran?"""
    name = "Evil\x1bProvider" + "x" * 5000
    answer = {"value": {"$dict": [["cpu", name], ["nvidia_gpu", ["CUDAExecutionProvider"]]]}}
    quoted = _verdict(tmp_path / "a", "01.1", answer).feedback
    assert "xxxx" in quoted and "x" * 40 not in quoted and "\x1b" not in quoted, quoted
    withheld = _verdict(tmp_path / "b", "01.1", answer, quote=False).feedback
    assert "<a str of 5013 characters>" in withheld and "Evil" not in withheld, withheld
    assert withheld.endswith("an earlier exercise's reference solution ran in this kernel)"), withheld


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
