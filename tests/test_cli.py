"""Tests for course_utils/cli.py: one clear line for expected failures, a traceback for bugs."""
import subprocess
import sys

from course_utils.cli import main


def test_help_lists_the_commands(capsys):
    """Does the CLI without arguments list its subcommands?"""
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("doctor", "providers", "build"):
        assert command in out


def test_expected_errors_are_one_line(capsys):
    """Is a bad argument reported as one `error:` line with exit 1?"""
    assert main(["build", "--check", "--only", "77"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no notebook in notebooks/ starts with") and "Traceback" not in err


def test_a_bug_shows_its_traceback(monkeypatch, capsys):
    """Is an unexpected exception (a bug) shown with its traceback, not as a one-line error?"""
    from course_utils import providers

    def broken(*args, **kwargs):
        raise KeyError("median_ms")

    monkeypatch.setattr(providers, "list_providers", broken)
    assert main(["providers"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'median_ms'" in err
    assert "bug in course_utils" in err and not err.startswith("error:")


def test_a_missing_file_is_one_line(tmp_path, capsys):
    """Is a missing model file (an expected failure) one line naming the file and the next step?"""
    assert main(["inspect", str(tmp_path / "nothing.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no file at") and "nothing.onnx" in err
    assert "course_utils export" in err and "Traceback" not in err and err.count("\n") == 1


def test_a_bad_model_spec_is_one_line(tmp_path, capsys):
    """Is a malformed --model spec one line showing the valid forms?"""
    assert main(["export", "resnet18", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: model spec 'resnet18'") and "torchvision:resnet18" in err
    assert "Traceback" not in err


def test_module_entry_point_runs():
    """Does `python -m course_utils providers` run as a program?"""
    result = subprocess.run([sys.executable, "-m", "course_utils", "providers"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "CPUExecutionProvider" in result.stdout


def test_a_broken_dependency_leaves_one_line_per_command(root, broken_numpy_env):
    """With numpy failing to import, does `bench` say what is wrong in one line and exit 1?"""
    result = subprocess.run([sys.executable, "-m", "course_utils", "bench", "--preset", "quick"],
                            cwd=root, env=broken_numpy_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("error: 'bench' cannot run here: ImportError: numpy is broken")
    assert "course_utils doctor" in result.stderr and "Traceback" not in result.stderr


def test_unknown_arguments_are_refused():
    """Is an unknown option still an argparse error (exit 2), not silently ignored?"""
    result = subprocess.run([sys.executable, "-m", "course_utils", "doctor", "--bogus"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unrecognized arguments: --bogus" in result.stderr
