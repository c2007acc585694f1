"""Tests for course_utils/install.py (the install check and ``doctor``)."""
import datetime as dt

import pytest

from course_utils import install
from course_utils.cli import main


def test_this_environment_passes():
    """Does the course's own environment pass the check, smoke test included?"""
    report = install.check_install()
    assert report.ok, str(report)
    assert "agree" in report.system["smoke test"]
    assert {p.name for p in report.packages} >= {"torch", "onnx", "onnxruntime", "onnxscript", "netron"}


def test_missing_and_old_packages_get_the_fix(monkeypatch):
    """Are a missing and a too-old package flagged with the exact pip command?"""
    monkeypatch.setattr(install, "_course_requirements", lambda: [
        ("no-such-package-xyz", "1.0", False), ("numpy", "999.0", False), ("pytest", "0.1", True)])
    report = install.check_install(run_smoke_test=False)
    status = {p.name: p for p in report.packages}
    assert status["no-such-package-xyz"].status == "missing"
    assert status["numpy"].status == "too old"
    assert status["pytest"].status == "newer"
    assert "pip install 'numpy==999.0'" in str(report) and not report.ok
    assert len(report.problems) == 2


@pytest.mark.parametrize("found, pinned, status", [
    ("2.14.1+cpu", "2.14.1", "ok"), ("2.14.1+cu128", "2.14.1", "ok"), ("1.20", "1.20.0", "ok"),
    ("2.14.2+cpu", "2.14.1", "newer"), ("1.10.0", "1.9.0", "newer"), ("2.14.0+cpu", "2.14.1", "too old"),
    ("2.14.1rc1", "2.14.1", "too old")])
def test_a_local_build_of_the_pin_is_ok(found, pinned, status):
    """Is PyTorch's CPU-only build of the pinned release (2.14.1+cpu) ok, and are versions
    ordered as versions (1.10 after 1.9), not as text?"""
    assert install._pin_status(found, pinned) == status


def test_onnxruntime_gpu_conflict_is_a_problem(monkeypatch):
    """Is onnxruntime installed beside onnxruntime-gpu flagged with how to keep one?"""
    class Dist:
        def __init__(self, name):
            self.metadata = {"Name": name}

    monkeypatch.setattr(install._metadata, "distributions",
                        lambda: [Dist("onnxruntime"), Dist("onnxruntime-gpu")])
    report = install.check_install(run_smoke_test=False)
    assert any("onnxruntime-gpu are both installed" in p for p in report.problems)


def test_old_netron_is_warned_about():
    """Does a Netron build older than 180 days get a warning with the fix?"""
    built = install.netron_build_date()
    assert built is not None
    report = install.check_install(run_smoke_test=False, today=built + dt.timedelta(days=200))
    assert any("pip install --upgrade netron" in w for w in report.warnings)
    fresh = install.check_install(run_smoke_test=False, today=built + dt.timedelta(days=10))
    assert not fresh.warnings


@pytest.mark.parametrize("broken, code", [(False, 0), (True, 1)])
def test_doctor_exit_status(monkeypatch, capsys, broken, code):
    """Does `doctor` exit 0 when all is fine and 1 with the fix named otherwise?"""
    if broken:
        monkeypatch.setattr(install, "_course_requirements", lambda: [("no-such-package-xyz", "1.0", False)])
    assert main(["doctor", "--no-smoke-test"]) == code
    out = capsys.readouterr().out
    assert ("pip install 'no-such-package-xyz==1.0'" in out) == broken


def test_doctor_reports_a_broken_numpy_without_a_traceback(root, broken_numpy_env):
    """With numpy failing to import, does `doctor` name it, give the fix and exit 1, with no traceback?"""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "course_utils", "doctor", "--no-smoke-test"],
                            cwd=root, env=broken_numpy_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "numpy is broken on purpose" in result.stdout
    assert "pip install --force-reinstall 'numpy==" in result.stdout


def test_requirements_come_from_pyproject_when_not_installed(monkeypatch, root):
    """Without the installed distribution, are the pins read from pyproject.toml, extras marked?"""
    def not_installed(name):
        raise install._metadata.PackageNotFoundError(name)

    monkeypatch.setattr(install._metadata, "requires", not_installed)
    rows = {name: (version, optional) for name, version, optional in install._course_requirements()}
    assert rows["torch"] == ("2.14.1", False)
    assert rows["pytest"][1] is True


def test_a_package_for_other_platforms_is_left_out(monkeypatch):
    """Is a pin whose platform marker does not hold here (the OpenVINO plugin on Arm or macOS)
    left out of the report, and one whose marker holds kept as required?"""
    monkeypatch.setattr(install._metadata, "requires", lambda name: [
        "torch==2.14.1", "elsewhere==1.0; sys_platform == 'no-such-platform'",
        "here==2.0; sys_platform != 'no-such-platform'", 'pytest==9.2.0; extra == "dev"'])
    rows = install._course_requirements()
    assert ("here", "2.0", False) in rows and ("pytest", "9.2.0", True) in rows
    assert not [r for r in rows if r[0] == "elsewhere"]


def test_the_report_says_whether_there_is_a_second_provider():
    """Does the report say in one line whether ONNX Runtime has a provider besides the CPU here,
    and why not where it has none?"""
    line = install.check_install(run_smoke_test=False).system["providers"]
    assert line.startswith(("a second one besides the CPU? yes: ", "a second one besides the CPU? no: "))
    assert "\n" not in line
