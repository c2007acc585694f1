"""Does a GPU build install cleanly: onnxruntime-gpu instead of onnxruntime, never both?

``make setup ORT=gpu`` (and ``make lab ORT=gpu``) must install the ``gpu`` extra and remove the
CPU build first; the default must do the reverse; ``pip install -e .`` alone must not pull the
CPU pin in beside a GPU build. Nothing is installed here: the tests read what make and pip
would do (``make -n``, the package's requirements) and fake an onnxruntime-gpu install for the
footprint of notebook 05.
"""
import importlib.metadata as metadata
import subprocess

import pytest

from course_utils import install
from course_utils.footprint import measure_footprint, onnxruntime_distribution
from course_utils.install import read_pyproject
from course_utils.release import student_makefile


def _dry_run(makefile_dir, *arguments):
    """What `make -n -B setup ...` would run, with a throw-away venv path."""
    result = subprocess.run(["make", "-n", "-B", "setup", "VENV=/nonexistent/venv", *arguments],
                            cwd=makefile_dir, capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(params=["repository", "student release"])
def makefile_dir(request, root, tmp_path):
    """The repository's Makefile, and the one the student release writes from it."""
    if request.param == "repository":
        return root
    (tmp_path / "Makefile").write_text(student_makefile((root / "Makefile").read_text()))
    (tmp_path / "pyproject.toml").write_text((root / "pyproject.toml").read_text())
    return tmp_path


@pytest.mark.parametrize("ort, chosen, removed", [("gpu", "gpu", "onnxruntime"), (None, "cpu", "onnxruntime-gpu")],
                         ids=["ORT=gpu", "default"])
def test_setup_installs_one_build_and_removes_the_other(makefile_dir, ort, chosen, removed):
    """Does the setup install the chosen extra only, after uninstalling the other build?"""
    code, commands = _dry_run(makefile_dir, *([f"ORT={ort}"] if ort else []))
    assert code == 0, commands
    install_lines = [line for line in commands.splitlines() if "pip install" in line and "-e" in line]
    assert len(install_lines) == 1 and f"'.[dev,{chosen}]'" in install_lines[0], commands
    uninstall = commands.index(f"pip uninstall --yes --quiet {removed} ")
    assert uninstall < commands.index(install_lines[0])


def test_an_unknown_build_is_refused_with_the_choices(makefile_dir):
    """Is ORT=rocm refused before anything runs, naming the builds there are?"""
    code, output = _dry_run(makefile_dir, "ORT=rocm")
    assert code != 0 and "use ORT=cpu (the default) or ORT=gpu" in output


def test_the_plain_package_pulls_in_neither_build(root):
    """Does `pip install -e .` leave ONNX Runtime to the extras, one build in each?"""
    project = read_pyproject(root / "pyproject.toml")["project"]

    def builds(requirements):  # plugins such as onnxruntime-ep-openvino bring no build
        return [r for r in requirements if r.partition("==")[0] in ("onnxruntime", "onnxruntime-gpu")]

    assert not builds(project["dependencies"])
    extras = project["optional-dependencies"]
    assert extras["cpu"] == ["onnxruntime==1.31.1"] and extras["gpu"] == ["onnxruntime-gpu==1.31.1"]
    assert not builds(extras["dev"])


def test_doctor_requires_onnxruntime_once(monkeypatch):
    """Does the install report count ONNX Runtime as required, in one row for either build?"""
    monkeypatch.setattr(install._metadata, "requires", lambda name: [
        "torch==2.14.1", 'onnxruntime==1.31.1; extra == "cpu"', 'onnxruntime-gpu==1.31.1; extra == "gpu"',
        'pytest==9.2.0; extra == "dev"'])
    rows = install._course_requirements()
    assert ("onnxruntime", "1.31.1", False) in rows and ("pytest", "9.2.0", True) in rows
    assert not [r for r in rows if r[0] == "onnxruntime-gpu"]


@pytest.fixture
def gpu_build_only(monkeypatch):
    """onnxruntime-gpu installed instead of onnxruntime (its files: those of the real build)."""
    real = metadata.distribution

    def distribution(name):
        if name == "onnxruntime":
            raise metadata.PackageNotFoundError(name)
        if name == "onnxruntime-gpu":
            return real("onnxruntime")
        return real(name)

    monkeypatch.setattr(metadata, "distribution", distribution)


def test_footprint_measures_the_gpu_build_where_it_is_installed(gpu_build_only):
    """Does notebook 05's footprint measure onnxruntime-gpu, and does asking for onnxruntime say why not?"""
    assert onnxruntime_distribution() == "onnxruntime-gpu"
    footprint = measure_footprint(onnxruntime_distribution(), "fastapi")
    assert footprint.roots[0] == "onnxruntime-gpu" and footprint.total_mb > 1
    with pytest.raises(ImportError, match=r"onnxruntime_distribution\(\)"):
        measure_footprint("onnxruntime")


def test_both_builds_installed_is_an_error(monkeypatch):
    """Where both builds are installed, is the conflict named with the way out?"""
    real = metadata.distribution
    monkeypatch.setattr(metadata, "distribution",
                        lambda name: real("onnxruntime") if name == "onnxruntime-gpu" else real(name))
    with pytest.raises(Exception, match="keep one"):
        onnxruntime_distribution()
