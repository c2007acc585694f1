"""Tests for course_utils/cli.py: one clear line, never a traceback."""
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
