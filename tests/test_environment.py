"""Do the pip and conda routes install the same versions?"""
import re

from course_utils.install import read_pyproject


def _pyproject_pins(root) -> dict:
    project = read_pyproject(root / "pyproject.toml")["project"]
    requirements = list(project["dependencies"])
    for extra, names in project.get("optional-dependencies", {}).items():
        if extra != "gpu":  # environment.yml is the CPU build (tests/test_gpu_build_setup.py)
            requirements += names
    pins = {}
    for requirement in requirements:
        name, separator, version = requirement.partition(";")[0].strip().partition("==")
        assert separator, f"{requirement!r} is not an exact pin"
        pins[name] = version
    return pins


def _conda_pins(text) -> dict:
    return dict(re.findall(r"^\s*-\s*([A-Za-z0-9_.-]+)==([^\s#]+)", text, flags=re.M))


def test_environment_yml_pins_match_pyproject(root):
    """Does environment.yml pin exactly the packages and versions of pyproject.toml?"""
    pyproject = _pyproject_pins(root)
    conda = _conda_pins((root / "environment.yml").read_text())
    assert pyproject and conda == pyproject


def test_torch_pins_are_the_course_pins(root):
    """Are torch and torchvision pinned to the pair that imports together?"""
    pins = _pyproject_pins(root)
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")
