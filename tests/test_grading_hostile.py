"""The grader against hostile submissions: each attack of tests/files/hostile/ in ONE sandboxed batch.

Every hostile notebook replaces exercise 00.1 by an attack that stores a wrong answer,
so a forged pass would show as a point; a notebook 02 attacks the checks with its models
(02.1, 02.3) and a notebook 04 attacks the state a sandbox shares, the timer's probe and
what feedback quotes after a replay (04.1-04.6). Honest classmates (notebook 00's
solution, one under an odd folder name), a student who hands in one notebook several
times (copies, a misnamed copy, 600 hard links, a link, a FIFO) and a 300 MiB file share
the batch, graded two at a time with a per-notebook budget; the grader runs in a
subprocess with a key of its own in its session keyring, so that its own peak memory and
that key can be looked at afterwards.
"""
import errno
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, declared_points

HOSTILE = ROOT / "tests" / "files" / "hostile"
MARKER = "course-hostile-7f3a"
ATTACKS = sorted(p.stem for p in HOSTILE.glob("*.ipynb"))
KERNEL_STATE = "kernel-state-timer-key-and-reference-leaks"
FORGED = {"models-in-checks": "02.3", KERNEL_STATE: "04.2"}  # the exercise each attack forges (00.1 otherwise)
NOTEBOOK = {"models-in-checks": "02-export-and-verify", KERNEL_STATE: "04-runtime-comparison"}
CANARY = Path("/tmp/course-canary-18")  # planted-links-and-fifos points every link here
BUDGET = 120
LIMIT = 15  # seconds a cell may run
# Graded first, in this order (two at a time): the sandbox-wide hog beside the honest classmate
# (whose marks must not suffer from it), then the other attacks that run to the cell limit, so
# that the batch's slow submissions overlap instead of ending it one by one.
FIRST = {"honest": "1", "sandbox-wide-hog": "1", "ignored-alarm": "2", "models-in-checks": "2",
         "memory-hog": "2", KERNEL_STATE: "3"}
SECRET = os.urandom(6).hex().encode()  # a file of the grader's that models name as their data
SESSION_KEY = b"course-secret"  # a key in the grader's session keyring
ODD = os.fsdecode(b"odd-name-\xff\x1b[31m")  # not UTF-8, and an ESC sequence

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


def _digests(folder):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.ipynb"))
            if p.is_file() and not p.is_symlink() and p.stat().st_size < 2**20}


def _process(pid):
    """(cmdline, uid, parent pid) of a process, or None once it is gone."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        uid = int(next(line for line in status if line.startswith("Uid:")).split()[1])
        ppid = int(next(line for line in status if line.startswith("PPid:")).split()[1])
    except (OSError, StopIteration, ValueError):
        return None
    return cmdline, uid, ppid


def _marker_processes():
    """Processes left by a sandbox: a marked or sandbox-uid process no live sandbox holds any more.

    Other graders on a shared machine have sandboxes running too: theirs still hang
    from their bwrap (or from another sandboxed process); a survivor of this batch
    has been handed to init or a subreaper.
    """
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        info = _process(pid)
        if info is None:
            continue
        cmdline, uid, ppid = info
        if not (MARKER in cmdline or "sleep 600" in cmdline or 61000 <= uid < 65000):
            continue
        parent = _process(ppid)
        if parent is not None and ("bwrap" in parent[0] or 61000 <= parent[1] < 65000):
            continue  # inside a sandbox that is still running (another grader's)
        found.append((pid, cmdline))
    return found


def _folder(name):
    """The submission folder of a student of the batch (a prefix puts it among the first graded)."""
    return f"{FIRST[name]}-{name}" if name in FIRST else name


def _student(folder):
    """The batch's name for a submission folder (the ordering prefix taken off)."""
    return re.sub(r"^[0-9]-", "", folder)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade every hostile notebook, an honest classmate and a huge file in one batch (two at a time)."""
    base = tmp_path_factory.mktemp("hostile")
    submissions = base / "submissions"
    solution = ROOT / "solutions" / "00-install-check.ipynb"
    secret = base / "course-secret.bin"  # in the grader's working folder, the grader's alone
    secret.write_bytes(SECRET)
    os.chmod(secret, 0o600)
    for name in ATTACKS:
        (submissions / _folder(name)).mkdir(parents=True)
        text = (HOSTILE / f"{name}.ipynb").read_text().replace("COURSE-HOSTILE-SECRET-PATH", str(secret))
        (submissions / _folder(name) / f"{NOTEBOOK.get(name, '00-install-check')}.ipynb").write_text(text)
    (submissions / _folder("honest")).mkdir()
    shutil.copy(solution, submissions / _folder("honest"))
    quick = HOSTILE / "forged-log.ipynb"  # graded in seconds: these show records, not points
    (submissions / ODD).mkdir()
    shutil.copy(quick, submissions / ODD / "00-install-check.ipynb")
    twice = submissions / "hands-in-twice"  # one record, not four
    twice.mkdir()
    shutil.copy(quick, twice / "00-install-check.ipynb")
    shutil.copy(quick, twice / "00-install-check (copy).ipynb")
    shutil.copy(quick, twice / "01-execution-providers.ipynb")  # named as another notebook
    for index in range(600):  # one file, 601 names: read once, one record
        os.link(twice / "00-install-check.ipynb", twice / f"00-link-{index:03}.ipynb")
    (twice / "00-linked.ipynb").symlink_to(solution)
    os.mkfifo(twice / "00-fifo.ipynb")
    shutil.rmtree(f"{CANARY}.d", ignore_errors=True)
    CANARY.write_text("canary")
    os.chmod(CANARY, 0o644)
    Path(f"{CANARY}.d").mkdir()
    (submissions / "huge-file").mkdir()
    with open(submissions / "huge-file" / "00-install-check.ipynb", "wb") as handle:
        handle.truncate(300 * 2**20)  # sparse: 300 MiB by size, nothing on disk
    before = _digests(submissions)
    tmp_before = set(os.listdir("/tmp"))
    from course_utils.grading.limits import UID_FIRST, UID_LAST
    from course_utils.grading.syscalls import uids_with_keys

    sandbox_uids = set(range(UID_FIRST, UID_LAST + 1))
    keys_before = uids_with_keys(sandbox_uids)  # (the kernel keeps a uid's keyrings once made)
    out_json, out_csv = base / "grades.json", base / "grades.csv"
    # The grader must be this checkout's (sandboxed) one, never another course_utils that
    # happens to be importable: the attacks below are real.
    script = ("import sys\nimport course_utils\n"
              f"assert course_utils.__file__.startswith({str(ROOT)!r}), course_utils.__file__\n"
              # A session keyring of this grader's own, holding a key a sandbox must not reach.
              "import ctypes, os\nL = ctypes.c_long\nlibc = ctypes.CDLL(None)\nlibc.syscall.restype = L\n"
              "add_key, keyctl = {'x86_64': (248, 250), 'aarch64': (217, 219)}[os.uname().machine]\n"
              "libc.syscall(L(keyctl), L(1), None)\n"  # KEYCTL_JOIN_SESSION_KEYRING
              f"key = libc.syscall(L(add_key), b'user', b'course-hostile-secret', {SESSION_KEY!r}, "
              f"L({len(SESSION_KEY)}), L(-3))\n"
              "import course_utils.grading.sandbox\nfrom course_utils.cli import main\n"
              f"code = main(['grade', {str(submissions)!r}, '--json', {str(out_json)!r}, "
              f"'--csv', {str(out_csv)!r}, '--timeout', '{LIMIT}', '--jobs', '2', "
              f"'--budget', '{BUDGET}', '--memory-mb', '6144'])\n"
              # VmHWM is this process's own peak; ru_maxrss would carry over the peak of
              # the (large) pytest process that started it, kept across fork and exec.
              "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
              "print('MAXRSS_KB', peak.split()[1])\n"
              "buffer = ctypes.create_string_buffer(64)\n"
              "size = libc.syscall(L(keyctl), L(11), L(key), buffer, L(64))\n"  # KEYCTL_READ
              "print('SESSION_KEY', buffer.raw[:max(0, size)].decode(errors='replace'))\n"
              "sys.exit(code)\n")
    private_tmp = base / "tmp"  # the grader's own temporary folders go here
    private_tmp.mkdir()
    grader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=base,
                              env={**os.environ, "TMPDIR": str(private_tmp), "PYTHONPATH": str(ROOT)})
    stdout, stderr = grader.communicate(timeout=900)
    done = subprocess.CompletedProcess(grader.args, grader.returncode, stdout, stderr)
    rss_kb = int(next(line.split()[1] for line in done.stdout.splitlines()
                      if line.startswith("MAXRSS_KB")))
    session_key = next(line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("SESSION_KEY"))
    keys_left = {uid: n for uid, n in uids_with_keys(sandbox_uids).items() if n > keys_before.get(uid, 0)}
    (base / "grader-peak-kb.txt").write_text(str(rss_kb))  # for whoever reads the numbers
    rows = json.loads(out_json.read_text())
    grades = {_student(Path(g["path"]).parent.name): g for g in rows if "hands-in-twice" not in g["path"]}
    canary = os.lstat(CANARY)
    return {"grades": grades, "rows": rows, "rss_mb": rss_kb / 1024, "before": before,
            "session_key": session_key, "keys_left": keys_left, "json_text": out_json.read_text(),
            "canary": (CANARY.read_text(), canary.st_uid, canary.st_gid, os.listdir(f"{CANARY}.d")),
            "cgroups": glob.glob(f"/sys/fs/cgroup/*/**/course-grade-{grader.pid}*", recursive=True),
            # This grader's work folders only (under its TMPDIR), as the cgroups are this grader's.
            "mounts": [line for line in Path("/proc/mounts").read_text().splitlines()
                       if "course-work" in line and str(private_tmp) in line],
            "log": done.stdout + done.stderr,
            "after": _digests(submissions), "base": base, "code": done.returncode,
            "csv": out_csv.read_text(), "tmp_new": set(os.listdir("/tmp")) - tmp_before,
            "grader_tmp": sorted(os.listdir(private_tmp))}


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_gets_no_point_for_the_forged_exercise(batch, attack):
    """Does each attack score 0 on its forged exercise, with the submission still graded in its budget?"""
    grade = batch["grades"][attack]
    assert grade["error"] is None, grade["error"]
    forged = grade["exercises"][FORGED.get(attack, "00.1")]
    assert forged["points"] == 0, forged
    assert grade["seconds"] <= BUDGET + 10, grade["seconds"]


def test_batch_finishes_and_the_honest_classmate_keeps_full_marks(batch):
    """Does the batch end normally (exit 1 only for the huge file) with the classmate's full marks intact?"""
    assert batch["code"] == 1  # one file could not be graded: the huge one
    honest, points = batch["grades"]["honest"], declared_points("00")
    assert honest["error"] is None and honest["points"] == honest["max_points"] == sum(points.values()), honest
    from course_utils.grading.results import safe_text

    odd = batch["grades"][safe_text(ODD)]  # graded, and the CSV written despite the name
    assert odd["error"] is None and odd["exercises"]["00.1"]["points"] == 0
    assert len(batch["grades"]) == len(ATTACKS) + 3
    assert batch["csv"].count(f"\n{_folder('honest')},") == len(points)  # one row per exercise
    assert "\x1b" not in batch["csv"] and "\x1b" not in batch["log"]


def test_a_notebook_handed_in_many_ways_is_graded_once(batch):
    """Are a copy, a misnamed copy, 600 hard links, a link and a FIFO of one student's notebook
    reported, and one graded?"""
    rows = {Path(r["path"]).name: r for r in batch["rows"] if "hands-in-twice" in r["path"]}
    graded = [r for r in rows.values() if r["error"] is None]
    assert len(graded) == 1 and graded[0]["path"].endswith("/00-install-check.ipynb")
    assert rows["00-install-check (copy).ipynb"]["duplicate_of"] == graded[0]["path"]
    assert not [name for name in rows if name.startswith("00-link-")]  # 600 hard links: no record each
    assert any("600 other name(s) (hard links)" in note for note in graded[0]["notes"]), graded[0]["notes"]
    assert "but its name says 01-execution-providers" in rows["01-execution-providers.ipynb"]["error"]
    assert "symbolic link" in rows["00-linked.ipynb"]["error"]
    assert "not a regular file" in rows["00-fifo.ipynb"]["error"]


def test_each_exercise_is_graded_once_from_its_own_cell(batch):
    """Do later cells with 00.1's header, or its metadata, leave its 'not attempted' unchanged, with a note?"""
    grade = batch["grades"]["duplicate-exercise-header"]
    assert "not attempted" in grade["exercises"]["00.1"]["feedback"]
    assert any("header of exercise 00.1 again" in note for note in grade["notes"])


def test_links_and_fifos_planted_by_the_kernel_are_never_followed(batch):
    """Is the host file every planted link points to unchanged and still root's, and its folder empty?"""
    assert batch["canary"] == ("canary", 0, 0, [])
    feedback = batch["grades"]["planted-links-and-fifos"]["exercises"]["00.1"]["feedback"]
    assert "could not be read as data" in feedback, feedback  # answer.json was a FIFO


def test_checks_that_run_a_students_model_stop_within_the_limit(batch):
    """Is a Loop of 2^40 iterations in a student's model stopped by the cell limit?"""
    feedback = batch["grades"]["models-in-checks"]["exercises"]["02.3"]["feedback"]
    assert f"ran longer than {LIMIT} s" in feedback, feedback


def test_checks_never_read_a_file_a_model_names(batch):
    """Is a model whose tensors of every kind (initializers, sparse initializers, attributes, a
    subgraph) name a file of the grader's, relatively and absolutely, refused with one clean message,
    with none of that file's bytes anywhere in the grades?"""
    feedback = batch["grades"]["models-in-checks"]["exercises"]["02.1"]["feedback"]
    assert feedback.startswith("the model keeps tensor data in another file"), feedback
    assert SECRET.decode() not in batch["json_text"] and SECRET.decode() not in batch["csv"]


def test_a_sandbox_shares_no_kernel_state(batch):
    """From a sandboxed kernel, do the grader's session key, a user keyring, inotify, ptrace and a
    user namespace all fail (ENOSYS or EPERM), is the grader's key untouched, and does no sandbox
    uid own a new key once the batch is over?"""
    feedback = batch["grades"][KERNEL_STATE]["exercises"]["04.1"]["feedback"]
    nosys, perm = errno.ENOSYS, errno.EPERM
    assert f"seccomp k{nosys} {nosys} {nosys} i{nosys} p{perm} u{perm}" in feedback, feedback
    assert batch["session_key"] == SESSION_KEY.decode()
    assert batch["keys_left"] == {}


def test_the_timer_probe_carries_no_answer(batch):
    """Does a timer that reads the scripted costs (from the probe object, its inputs or the
    kernel's memory) instead of calling fn() and clock() score nothing?"""
    timer = batch["grades"][KERNEL_STATE]["exercises"]["04.2"]
    assert timer["points"] == 0 and not timer["passed"], timer


def _reference_windows(notebook, width=16):
    """Every run of ``width`` characters of the reference solutions' code lines of a notebook."""
    import nbformat

    from course_utils.build import parse_exercises

    source = nbformat.read(ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4)
    lines = [line.strip() for e in parse_exercises(source, notebook) for line in e.solution.splitlines()
             if line.strip() and not line.strip().startswith("#") and "check(" not in line]
    return {line[i:i + width] for line in lines for i in range(len(line) - width + 1)}


def test_feedback_quotes_nothing_of_a_replayed_reference(batch):
    """After 04.1's reference ran in the kernel, do an exception's message, a capture's error text, a
    missing file's name, a Path in the data and a later cell's error all leave the feedback and notes
    without a single 16-character run of the reference code?"""
    grade = batch["grades"][KERNEL_STATE]
    texts = [e["feedback"] for e in grade["exercises"].values()] + grade["notes"]
    windows = _reference_windows("04-runtime-comparison")
    leaked = [(text, w) for text in texts for w in windows if w in text]
    assert leaked == [], leaked
    assert all(e["points"] == 0 for e in grade["exercises"].values()), grade["exercises"]
    assert "the cell raised an exception (its type and message are not shown" in grade["exercises"]["04.3"]["feedback"]


def test_every_kind_of_kernel_message_counts_against_the_output_cap(batch):
    """Is a cell that sends comms, code echoes, display metadata and status messages (no printed
    output at all) stopped at the output cap?"""
    notes = batch["grades"][KERNEL_STATE]["notes"]
    assert any(n.startswith("code cell 9: the cell printed more than 8 MiB") for n in notes), notes


def test_forged_answer_data_fails_only_that_exercise(batch):
    """Do a forged 8 TiB .npy header and a bloated answer fail 00.1 cleanly while 00.2 is still graded?"""
    header = batch["grades"]["forged-npy-header"]["exercises"]["00.1"]["feedback"]
    assert "does not hold the data its header claims" in header, header
    bloat = batch["grades"]["forged-answer-bloat"]["exercises"]["00.1"]["feedback"]
    assert "MiB in all" in bloat, bloat


def test_the_sandbox_as_a_whole_has_a_memory_cap(batch):
    """With cgroups, do processes that each stay under the per-process cap meet the sandbox's cap, with a note?"""
    from course_utils.grading.limits import find_cgroups

    tree, line = find_cgroups(f"course-grade-probe-{os.getpid()}")
    if tree is None:
        pytest.skip(line)
    tree.remove()
    hog = batch["grades"]["sandbox-wide-hog"]
    assert any("memory cap of 6144 MiB" in note for note in hog["notes"]), (
        hog["notes"], hog["exercises"]["00.1"], [l for l in batch["log"].splitlines() if "cgroup" in l])


def test_what_reaches_the_instructor_is_short_and_escaped(batch):
    """Is an answer with ESC sequences and 12 MiB cut to a short, escaped excerpt everywhere?"""
    feedback = batch["grades"]["escape-sequences-and-huge-strings"]["exercises"]["00.1"]["feedback"]
    assert "\x1b" not in feedback and "\u202e" not in feedback and len(feedback) <= 400, feedback
    assert "\\x1b" in feedback
    assert all(len(e["feedback"]) <= 400 for g in batch["rows"] for e in g["exercises"].values())


def test_huge_file_is_refused_before_parsing(batch):
    """Is a 300 MiB notebook a clean per-submission error naming the limit?"""
    assert "over the 20 MiB limit" in batch["grades"]["huge-file"]["error"]


def test_stopped_cells_are_reported(batch):
    """Are an ignored alarm, an output flood and a memory hog stopped and named?"""
    grades = batch["grades"]
    assert f"longer than {LIMIT} s" in grades["ignored-alarm"]["exercises"]["00.1"]["feedback"]
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
    assert batch["cgroups"] == [] and batch["mounts"] == []  # every sandbox's group and tmpfs removed
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
