"""Do the pip and conda routes install the same versions, on the same platforms?"""
import re

from course_utils.install import read_pyproject


def _pyproject_pins(root) -> dict:
    """{name: (version, platform marker or "")} of pyproject.toml's CPU route."""
    project = read_pyproject(root / "pyproject.toml")["project"]
    requirements = list(project["dependencies"])
    for extra, names in project.get("optional-dependencies", {}).items():
        if extra != "gpu":  # environment.yml is the CPU build (tests/test_gpu_build_setup.py)
            requirements += names
    pins = {}
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        name, separator, version = spec.strip().partition("==")
        assert separator, f"{requirement!r} is not an exact pin"
        pins[name] = (version, _normalise(marker))
    return pins


def _normalise(marker: str) -> str:
    return re.sub(r"\s+", " ", marker.replace('"', "'")).strip()


def _conda_pins(text) -> dict:
    """{name: (version, marker)} of environment.yml's pip lines, quoted or not."""
    pins = {}
    for line in re.findall(r"^\s*-\s*(['\"]?[A-Za-z0-9_.-]+==.*)$", text, flags=re.M):
        line = line.strip()
        if line[0] in "'\"" and line[-1] == line[0]:
            line = line[1:-1]
        spec, _, marker = line.partition(";")
        name, _, version = spec.strip().partition("==")
        pins[name] = (version.split("#")[0].strip(), _normalise(marker))
    return pins


def test_environment_yml_pins_match_pyproject(root):
    """Does environment.yml pin exactly the packages, versions and platform markers of
    pyproject.toml?"""
    pyproject = _pyproject_pins(root)
    conda = _conda_pins((root / "environment.yml").read_text())
    assert pyproject and conda == pyproject
    assert any(marker for _, marker in pyproject.values())  # the markers are compared too


def test_torch_pins_are_the_course_pins(root):
    """Are torch and torchvision pinned to the pair that imports together?"""
    pins = _pyproject_pins(root)
    assert (pins["torch"][0], pins["torchvision"][0]) == ("2.14.1", "0.29.1")
