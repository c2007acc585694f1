"""Does the student release hold what students need, and nothing the instructor keeps?"""
import ast
import json
import os
import re
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, stop_process_group
from course_utils.build import BEGIN, END, source_notebooks
from course_utils.release import write_release


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_release(tmp_path_factory.mktemp("student") / "onnx-course")


def _released_texts(release: Path) -> dict[str, str]:
    """Every released file as text; notebooks as their decoded sources and outputs."""
    texts = {}
    for path in release.rglob("*"):
        if not path.is_file():
            continue
        raw = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".ipynb":
            nb = json.loads(raw)
            parts = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in nb["cells"]]
            parts += [json.dumps(c.get("outputs", [])) for c in nb["cells"]]
            raw = "\n".join(parts)
        texts[str(path.relative_to(release))] = raw
    return texts


def _solution_regions():
    """(notebook, region text, distinctive lines) of every solution region in notebooks/."""
    regions, outside = [], []
    for path in source_notebooks(ROOT):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            inside, current = False, []
            for line in cell.source.splitlines():
                if line.strip() == BEGIN:
                    inside, current = True, []
                elif line.strip() == END:
                    inside = False
                    regions.append((path.stem, "\n".join(current)))
                elif inside:
                    current.append(line)
                else:
                    outside.append(line)
    # Lines that stand outside the regions too (prose, headers, the library) are not answers.
    outside.extend(p.read_text(encoding="utf-8") for p in (ROOT / "course_utils").rglob("*.py"))
    common = "\n".join(outside)
    return [(nb, text, [l.strip() for l in text.splitlines()
                        if len(l.strip()) >= 20 and l.strip() not in common])
            for nb, text in regions]


def test_release_leaves_out_answers_grader_and_sources(release):
    """Are notebooks/, solutions/, tests/, the grader and its hidden checks (and the make target and
    conftest.py that need tests/) all absent?"""
    for absent in ["notebooks", "solutions", "tests", ".ci", "course_utils/grading",
                   "course_utils/release.py", "conftest.py"]:
        assert not (release / absent).exists(), absent
    names = sorted(p.name for p in (release / "exercises").glob("*.ipynb"))
    assert names == sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    for name in ["README.md", "Makefile", "pyproject.toml", "environment.yml",
                 "course_utils/checks.py", "course_utils/exercise_checks/__init__.py"]:
        assert (release / name).is_file(), name
    readme = (release / "README.md").read_text(encoding="utf-8")
    assert "## For instructors" not in readme and "course_utils grade" not in readme
    assert "make lab" in readme
    assert "hidden_checks" not in (release / "pyproject.toml").read_text(encoding="utf-8")
    assert "check-notebook" not in (release / "Makefile").read_text(encoding="utf-8")  # it needs tests/


def test_no_solution_text_anywhere_in_the_release(release):
    """Does no solution region, nor any distinctive line of one, appear in any released file?"""
    texts = _released_texts(release)
    regions = _solution_regions()
    assert len(regions) >= 25  # one or more per exercise
    leaks = []
    for notebook, region, lines in regions:
        for name, text in texts.items():
            if region.strip() and region.strip() in text:
                leaks.append(f"{notebook}: a whole solution region in {name}")
            leaks += [f"{notebook}: {line!r} in {name}" for line in lines if line in text]
    assert not leaks, "\n".join(leaks[:20])


def _hidden_check_pieces() -> list[str]:
    """Source of every function and constant in course_utils/grading/hidden_checks/."""
    folder = ROOT / "course_utils" / "grading" / "hidden_checks"
    modules = sorted(p for p in folder.glob("*.py") if p.name != "__init__.py")
    assert modules, "the hidden checks live in course_utils/grading/hidden_checks/"
    pieces = []
    for module in modules:
        source = module.read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.Assign, ast.AnnAssign)):
                segment = ast.get_source_segment(source, node)
                body = segment.splitlines()[1:] if isinstance(node, ast.FunctionDef) else [segment]
                if any(len(line.strip()) >= 20 for line in body):
                    pieces.append((module.name, "\n".join(body)))
    return pieces


def test_no_hidden_check_source_in_the_release(release):
    """Does no hidden check's body or constant appear in any released file?"""
    texts = _released_texts(release)
    pieces = _hidden_check_pieces()
    leaks = [f"{module}: {piece.splitlines()[0].strip()[:60]!r} in {name}"
             for module, piece in pieces for name, text in texts.items() if piece in text]
    assert not leaks, "\n".join(leaks)


def test_release_refuses_to_overwrite(tmp_path):
    """Is an existing non-empty folder refused, with nothing changed in it?"""
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        write_release(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def _venv_reusing_this_one(release: Path) -> Path:
    """A .venv in the release that sees this environment's packages but the release's own
    course_utils (so the test needs no download and no second install)."""
    venv = release / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The release first, then this environment's packages (whose editable hook for the
    # repository's course_utils is not a site dir here, so it never loads).
    Path(site, "course-release.pth").write_text(
        f"{release}\n{sysconfig.get_paths()['purelib']}\n", encoding="utf-8")
    # `python -m jupyter lab` looks for a jupyter-lab script beside the interpreter.
    script = venv / "bin" / "jupyter-lab"
    script.write_text(f"#!{python}\nimport sys\nfrom jupyterlab.labapp import main\nsys.exit(main())\n")
    script.chmod(0o755)
    (venv / ".installed").touch()  # newer than pyproject.toml: make lab skips the install
    web = Path(sys.prefix) / "share" / "onnx-course"
    link = venv / "share" / "onnx-course"
    # onnxruntime-web as make setup left it: make lab fetches nothing either (the release is
    # shared by this module's tests, so the link may be there already)
    if web.is_dir() and not link.is_symlink():
        (venv / "share").mkdir(exist_ok=True)
        link.symlink_to(web)
    return python


def test_released_tree_runs_make_lab_and_its_public_checks(release, free_port):
    """Does `make lab` in the release serve its exercises, and do its public checks pass a
    correct answer and fail a wrong one without the grader's modules?"""
    python = _venv_reusing_this_one(release)
    probe = subprocess.run(
        [str(python), "-c",
         "import course_utils\n"
         "from packaging.version import Version\n"
         "from course_utils import check\n"
         "print(course_utils.__file__)\n"
         "def pin_status(installed, pinned):\n"
         "    if installed is None:\n"
         "        return 'missing'\n"
         "    found, pin = Version(Version(installed).public), Version(pinned)\n"
         "    return 'ok' if found == pin else 'newer' if found > pin else 'too old'\n"
         "check('00.1', pin_status)\n"
         "check('00.1', lambda installed, pinned: 'ok' if installed == pinned else 'too old')\n"],
        cwd=release / "exercises", capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    where, good, bad = probe.stdout.splitlines()[:3]
    assert where.startswith(str(release))
    assert good.startswith("[pass] Exercise 00.1")
    assert bad.startswith("[try again] Exercise 00.1")

    token = "course-release-token"
    process = subprocess.Popen(
        ["make", "-s", "lab", f"PORT={free_port}",
         f"LAB_ARGS=--no-browser --IdentityProvider.token={token} --ServerApp.port_retries=0"],
        cwd=release, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        deadline, listing = time.monotonic() + 120, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{free_port}/api/contents",
                                                 headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    listing = json.load(response)
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer within 120 s"
        served = {item["name"] for item in listing["content"]}
        assert {p.name for p in (release / "exercises").glob("*.ipynb")} <= served
    finally:
        stop_process_group(process)


def _exercises_of(stem: str):
    import nbformat

    from course_utils.build import parse_exercises

    return parse_exercises(nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4), stem)


def test_selfcheck_runs_in_the_student_copy(release):
    """Does `python -m course_utils selfcheck exercises/NN-....ipynb` work in the release (no grader there),
    scoring the notebook as shipped 0 and saying hidden checks come after submission?"""
    assert (release / "course_utils" / "selfcheck.py").is_file() and (release / "course_utils" / "scores.py").is_file()
    python = _venv_reusing_this_one(release)
    notebook = release / "exercises" / "01-execution-providers.ipynb"
    before = notebook.read_bytes()
    run = subprocess.run([str(python), "-m", "course_utils", "selfcheck", "exercises/01-execution-providers.ipynb"],
                         cwd=release, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    assert notebook.read_bytes() == before
    exercises = _exercises_of("01-execution-providers")
    assert f"total 0/{sum(e.points for e in exercises)}" in run.stdout, run.stdout
    assert "checked after submission" in run.stdout
    assert run.stdout.count("not attempted: the cell still raises NotImplementedError") == len(exercises)


def test_the_student_cli_lists_no_instructor_commands(release):
    """Does the release's `--help` leave out build, grade and release (which need what it lacks)?"""
    # -S: no site hooks, so the repository's editable course_utils stays out of the path.
    path = os.pathsep.join([str(release), sysconfig.get_paths()["purelib"]])
    result = subprocess.run([sys.executable, "-S", "-m", "course_utils", "--help"], cwd=release,
                            env=dict(os.environ, PYTHONPATH=path), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    commands = set(re.findall(r"^    ([\w-]+)\s", result.stdout, flags=re.MULTILINE))
    assert {"doctor", "providers", "export", "inspect", "netron"} <= commands, result.stdout
    assert not commands & {"build", "grade", "release", "export-nbgrader"}, result.stdout


def test_the_student_readme_has_no_instructor_entries(release):
    """Is every README list item about instructor-only tools (the grader's sandbox) left out?"""
    readme = (release / "README.md").read_text(encoding="utf-8")
    assert "## Troubleshooting" in readme and "`doctor` says a package is missing" in readme
    for instructor in ("`grade`", "bubblewrap", "--no-sandbox", "course_utils build",
                       "export-nbgrader"):
        assert instructor not in readme, instructor
    assert "\n\n\n" not in readme


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_release_gets_the_umasks_modes(tmp_path, mask):
    """Are the release's folder and everything in it 0777 / 0666 less the umask (mkdtemp's 0700
    and a checkout's 0600 files not carried over), executables keeping their x bits?"""
    import stat

    root = tmp_path / "course"
    for name, mode in [("exercises/00-a.ipynb", 0o600), ("course_utils/__init__.py", 0o600),
                       ("course_utils/tool.sh", 0o700), ("README.md", 0o644), ("Makefile", 0o644),
                       ("pyproject.toml", 0o644)]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}\n")
        (root / name).chmod(mode)
    (root / "course_utils").chmod(0o700)
    old = os.umask(mask)
    try:
        out = write_release(tmp_path / "student", root=root)
    finally:
        os.umask(old)
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*")}
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    assert modes == {"exercises": 0o777 & ~mask, "course_utils": 0o777 & ~mask,
                     "exercises/00-a.ipynb": 0o666 & ~mask, "course_utils/__init__.py": 0o666 & ~mask,
                     "course_utils/tool.sh": 0o777 & ~mask, "README.md": 0o666 & ~mask,
                     "Makefile": 0o666 & ~mask, "pyproject.toml": 0o666 & ~mask}


def test_the_student_readme_drops_the_generated_region_markers(release):
    """Does the student README keep the notebook table but none of the build's marker comments?"""
    readme = (release / "README.md").read_text(encoding="utf-8")
    assert "| notebook | what you do | time |" in readme and "GENERATED" not in readme
