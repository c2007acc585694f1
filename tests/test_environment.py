"""Do the pip and conda routes install the same versions?"""
import re


def _pins(text):
    return dict(re.findall(r"([A-Za-z0-9_.-]+)==([0-9][^\s\"';]*)", text))


def test_environment_yml_pins_match_pyproject(root):
    """Does environment.yml pin exactly the packages and versions of pyproject.toml?"""
    pyproject = _pins((root / "pyproject.toml").read_text())
    conda = _pins((root / "environment.yml").read_text())
    assert pyproject and conda == pyproject


def test_torch_pins_are_the_course_pins(root):
    """Are torch and torchvision pinned to the pair that imports together?"""
    pins = _pins((root / "pyproject.toml").read_text())
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")
