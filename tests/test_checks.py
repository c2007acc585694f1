"""Tests for course_utils/checks.py and the exercise registry."""
import nbformat
import pytest

from course_utils import checks
from course_utils.build import parse_exercises, source_notebooks


@pytest.fixture
def demo_checks(monkeypatch):
    from course_utils import answers

    registry = {}
    monkeypatch.setattr(checks, "_REGISTRY", registry)
    monkeypatch.setattr(checks, "_LOADED", True)
    monkeypatch.setattr(checks, "_HIDDEN_LOADED", True)
    monkeypatch.setattr(answers, "_ANSWERS", {})
    answers.register_answer("99.1", "answer")

    @checks.register("99.1")
    def _positive(answer):
        if answer <= 0:
            raise checks.CheckFailed("the answer should be positive")

    @checks.register("99.1", hidden=True)
    def _even(answer):
        if answer % 2:
            raise checks.CheckFailed("look again at the parity")

    return registry


def test_public_checks_print_one_line(demo_checks, capsys):
    """Does a passing answer print one pass line that mentions the grader?"""
    assert checks.check("99.1", 3) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "[pass]" in out and "grader" in out


def test_failure_prints_the_hint_without_traceback(demo_checks, capsys):
    """Does a wrong answer print the hint, and no traceback?"""
    checks.check("99.1", -1)
    out = capsys.readouterr().out
    assert "[try again]" in out and "positive" in out and "Traceback" not in out


def test_broken_answer_type_is_reported_not_raised(demo_checks, capsys):
    """Is an answer of the wrong type reported as 'could not check' with its type?"""
    checks.check("99.1", "three")
    assert "could not check this answer (str" in capsys.readouterr().out


def test_hidden_checks_run_only_for_the_grader(demo_checks, capsys):
    """Do hidden checks stay out of a student's check() and run only when asked for?"""
    assert checks.run_checks("99.1", 3).passed
    checks.check("99.1", 3)
    assert "[pass]" in capsys.readouterr().out
    hidden = checks.run_checks("99.1", 3, include_hidden=True)
    assert not hidden.passed and hidden.feedback == "look again at the parity"


def test_checks_see_data_not_the_live_object(demo_checks):
    """Does an answer whose __eq__ is always True reach the checks as data of its base type?"""
    seen = []
    checks.register("99.1")(lambda answer: seen.append(type(answer)))

    class AlwaysEqual(int):
        def __eq__(self, other):
            return True
        __hash__ = int.__hash__

    checks.run_checks("99.1", AlwaysEqual(4))
    assert seen == [int]


def test_unknown_exercise_lists_known_ones(demo_checks):
    """Does a wrong exercise number name the known ones?"""
    with pytest.raises(KeyError, match="99.1"):
        checks.run_checks("42.1", 1)


def test_every_exercise_has_checks_and_every_check_an_exercise(root):
    """Does each exercise in notebooks/ have public checks, and no check point at nothing?"""
    declared = set()
    for path in source_notebooks(root):
        declared |= {e.id for e in parse_exercises(nbformat.read(path, as_version=4), path.stem)}
    registered = set(checks.known_exercises())
    assert declared == registered
    public = {eid for eid, fns in checks._REGISTRY.items() if any(not hidden for _, hidden in fns)}
    assert declared <= public
    from course_utils.answers import _ANSWERS

    assert set(_ANSWERS) == declared  # every exercise declares the variable the grader reads


def test_versions_compared_as_text_fail_the_public_check_of_00_1(capsys):
    """Does 00.1's public check catch versions compared as text (1.10 before 1.9) with its hint,
    and pass a function that orders them as pip does?"""
    from course_utils.grading.hidden_checks.install import pin_status_oracle

    def as_text(installed, pinned):
        if installed is None:
            return "missing"
        return "ok" if installed == pinned else ("newer" if installed > pinned else "too old")

    checks.check("00.1", as_text)
    out = capsys.readouterr().out
    assert out.startswith("[try again] Exercise 00.1: pin_status('1.10.0', '1.9.0') gave 'too old': 10 comes")
    checks.check("00.1", pin_status_oracle)
    assert capsys.readouterr().out.startswith("[pass] Exercise 00.1")


def test_a_broken_check_module_breaks_only_its_own_exercises(tmp_path):
    """With a syntax error planted in one check module, do the other checks still run, and do
    that module's exercises say in one line that they were not checked, with no traceback?"""
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    shutil.copytree(ROOT / "course_utils", tmp_path / "course_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    graphs = tmp_path / "course_utils" / "exercise_checks" / "graphs.py"
    graphs.write_text(graphs.read_text() + "\ndef broken(:\n")
    script = ("from packaging.version import Version\nfrom course_utils import check\n"
              "def pin_status(installed, pinned):\n"
              "    if installed is None:\n        return 'missing'\n"
              "    found, pin = Version(Version(installed).public), Version(pinned)\n"
              "    return 'ok' if found == pin else ('newer' if found > pin else 'too old')\n"
              "check('00.1', pin_status)\n"
              "check('03.1', 'forward')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and "Traceback" not in result.stdout + result.stderr, result.stderr
    assert lines[0].startswith("[pass] Exercise 00.1")
    assert lines[1].startswith("[not checked] Exercise 03.1: the course's checks could not be loaded "
                               "(exercise_checks/graphs.py: SyntaxError")
