"""The grader against hostile submissions: each attack of tests/files/hostile/ in ONE sandboxed batch.

Every hostile notebook replaces exercise 00.1 by an attack that stores a wrong answer,
so a forged pass would show as a point. One honest classmate (notebook 00's solution)
and a 300 MiB file share the batch; the grader runs in a subprocess so that its own
peak memory can be measured.
"""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

HOSTILE = ROOT / "tests" / "files" / "hostile"
MARKER = "course-hostile-7f3a"
ATTACKS = sorted(p.stem for p in HOSTILE.glob("*.ipynb"))

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


def _digests(folder):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.ipynb"))
            if p.stat().st_size < 2**20}


def _marker_processes():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            uid = int(next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if line.startswith("Uid:")).split()[1])
        except (OSError, StopIteration, ValueError):
            continue
        if MARKER in cmdline or "sleep 600" in cmdline or 61000 <= uid < 65000:
            found.append((pid, cmdline))
    return found


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade every hostile notebook, an honest classmate and a huge file in one batch (two at a time)."""
    base = tmp_path_factory.mktemp("hostile")
    submissions = base / "submissions"
    for name in ATTACKS:
        (submissions / name).mkdir(parents=True)
        shutil.copy(HOSTILE / f"{name}.ipynb", submissions / name / "00-install-check.ipynb")
    (submissions / "honest").mkdir()
    shutil.copy(ROOT / "solutions" / "00-install-check.ipynb", submissions / "honest")
    (submissions / "huge-file").mkdir()
    with open(submissions / "huge-file" / "00-install-check.ipynb", "wb") as handle:
        handle.truncate(300 * 2**20)  # sparse: 300 MiB by size, nothing on disk
    before = _digests(submissions)
    tmp_before = set(os.listdir("/tmp"))
    out_json, out_csv = base / "grades.json", base / "grades.csv"
    # The grader must be this checkout's (sandboxed) one, never another course_utils that
    # happens to be importable: the attacks below are real.
    script = ("import sys\nimport course_utils\n"
              f"assert course_utils.__file__.startswith({str(ROOT)!r}), course_utils.__file__\n"
              "import course_utils.grading.sandbox\nfrom course_utils.cli import main\n"
              f"code = main(['grade', {str(submissions)!r}, '--json', {str(out_json)!r}, "
              f"'--csv', {str(out_csv)!r}, '--timeout', '30', '--jobs', '2'])\n"
              # VmHWM is this process's own peak; ru_maxrss would carry over the peak of
              # the (large) pytest process that started it, kept across fork and exec.
              "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
              "print('MAXRSS_KB', peak.split()[1])\n"
              "sys.exit(code)\n")
    private_tmp = base / "tmp"  # the grader's own temporary folders go here
    private_tmp.mkdir()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=900, cwd=base,
                          env={**os.environ, "TMPDIR": str(private_tmp), "PYTHONPATH": str(ROOT)})
    rss_kb = int(next(line.split()[1] for line in done.stdout.splitlines()
                      if line.startswith("MAXRSS_KB")))
    grades = {Path(g["path"]).parent.name: g for g in json.loads(out_json.read_text())}
    return {"grades": grades, "rss_mb": rss_kb / 1024, "before": before,
            "after": _digests(submissions), "base": base, "code": done.returncode,
            "csv": out_csv.read_text(), "tmp_new": set(os.listdir("/tmp")) - tmp_before,
            "grader_tmp": sorted(os.listdir(private_tmp))}


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_gets_no_point_for_the_forged_exercise(batch, attack):
    """Does each attack score 0 on exercise 00.1, with the submission still graded?"""
    grade = batch["grades"][attack]
    assert grade["error"] is None, grade["error"]
    assert grade["exercises"]["00.1"]["points"] == 0, grade["exercises"]["00.1"]


def test_batch_finishes_and_the_honest_classmate_keeps_full_marks(batch):
    """Does the batch end normally (exit 1 only for the huge file) with the classmate's 5/5 intact?"""
    assert batch["code"] == 1  # one file could not be graded: the huge one
    honest = batch["grades"]["honest"]
    assert honest["error"] is None and honest["points"] == honest["max_points"] == 5, honest  # 00.1-00.3
    assert len(batch["grades"]) == len(ATTACKS) + 2
    assert batch["csv"].count("\nhonest,") == 3  # one row per exercise


def test_huge_file_is_refused_before_parsing(batch):
    """Is a 300 MiB notebook a clean per-submission error naming the limit?"""
    assert "over the 20 MiB limit" in batch["grades"]["huge-file"]["error"]


def test_stopped_cells_are_reported(batch):
    """Are an ignored alarm, an output flood and a memory hog stopped and named?"""
    grades = batch["grades"]
    assert "longer than 30 s" in grades["ignored-alarm"]["exercises"]["00.1"]["feedback"]
    for flood in ("output-flood", "output-flood-many-lines"):
        assert "printed more than" in grades[flood]["exercises"]["00.1"]["feedback"]
    hog = grades["memory-hog"]["exercises"]["00.1"]["feedback"]
    assert "MemoryError" in hog or "died" in hog or "longer than" in hog


def test_nothing_outside_the_work_folder_is_written(batch):
    """Are submissions unchanged, and no marker file left in /tmp, the home or the course folder?"""
    assert batch["before"] == batch["after"]
    assert not [name for name in batch["tmp_new"] if MARKER in name]
    assert batch["grader_tmp"] == []  # every work folder, copy and library removed
    for folder in (Path.home(), ROOT, ROOT / "course_utils", Path(sys.prefix), batch["base"]):
        assert not list(folder.glob(f"{MARKER}*"))


def test_no_process_survives_and_nothing_listens(batch):
    """Are detached children gone, and is the 0.0.0.0 listener unreachable from the grader's side?"""
    assert _marker_processes() == []
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", 47613)) != 0


def test_grader_memory_stays_small(batch):
    """Does the grader's own peak memory stay under 400 MB through floods and hogs?"""
    assert batch["rss_mb"] < 400, batch["rss_mb"]


def test_missing_bwrap_is_one_clear_line(monkeypatch, capsys):
    """Without bubblewrap, does grade say how to install it (and exit 1)?"""
    from course_utils.grading import sandbox
    from course_utils.cli import main

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert main(["grade", str(HOSTILE / "forged-log.ipynb")]) == 1
    err = capsys.readouterr().err
    assert "apt-get install bubblewrap" in err and "--no-sandbox" in err and err.count("\n") == 1
