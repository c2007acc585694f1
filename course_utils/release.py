"""The student release: what students get, and nothing an instructor keeps.

Covers: ``python -m course_utils release OUT/``, which writes ``exercises/``,
the helper library without the grader and its hidden checks, the student part
of the README and the setup files (``Makefile``, ``pyproject.toml``,
``environment.yml``). Does not cover: building the exercises (``build.py``,
run it first) or grading (``grading/``).

Left out on purpose: ``notebooks/`` and ``solutions/`` (the answers),
``course_utils/grading/`` (the grader itself and its hidden checks with their
constants), ``tests/`` (its fixtures hold answers too), the instructor-only
subcommands (``build``, ``grade``, ``release``, ``export-nbgrader``: their modules are not copied,
so ``--help`` does not list them), the instructor-only ``make`` targets and
README entries. The release is written into a temporary
folder beside ``OUT`` and renamed into place at the end, so a failure leaves
nothing half-written; an existing non-empty ``OUT`` is refused. Its files and
folders get the modes the umask gives (0666 and 0777 less the umask, executables
keeping their x bits), whatever the modes in the course repository, so a copy
put in a shared folder is readable by those the umask lets read.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from .build import ROOT, new_file_modes
from .errors import CourseError, InvalidArgumentError, MissingFileError
from .options import path_arg
from .paths import output_folder
from .readme_tables import is_region_marker

__all__ = ["write_release", "FolderNotEmptyError", "SHIPPED"]


class FolderNotEmptyError(CourseError, FileExistsError):
    """The release folder already holds files; nothing is overwritten."""

#: Paths relative to the repository root that a student copy holds (nothing written by an
#: instructor's command may land inside them: it would ship to students).
SHIPPED = ["exercises", "course_utils", "lab-settings", "environment.yml", ".gitignore"]
# Inside the copied folders: what stays with the instructor.
_INSTRUCTOR_ONLY = {
    "course_utils/grading",         # the grader: sandbox, verdicts, results, hidden checks
    "course_utils/release.py",      # this module
    "course_utils/build.py",        # `build` needs notebooks/, which students do not get
    "course_utils/sittings.py",     # the time rule and the README's tables: for `build` only
    "course_utils/readme_tables.py",
    "course_utils/nbgrader_export.py",  # so does `export-nbgrader`
}
# make targets that need notebooks/, solutions/ or tests/.
_INSTRUCTOR_TARGETS = {"test", "check-notebook", "build", "check-build"}
# README sections that stay with the instructor, and CLI lines students cannot run.
_INSTRUCTOR_SECTIONS = {"For instructors"}
_INSTRUCTOR_COMMANDS = ("course_utils build", "course_utils grade", "course_utils release",
                         "course_utils export-nbgrader", "make test")
# A README list item (a troubleshooting entry, say) about these is left out whole.
_INSTRUCTOR_ITEM = re.compile(r"course_utils (build|grade|release)\b|make test\b"
                              r"|`(grade|build|release)`|\bthe grader\b|--no-sandbox")


def _ignore(root: Path):
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".egg-info"))
                   or n in ("artifacts", ".ipynb_checkpoints")}
        relative = Path(folder).resolve().relative_to(root)
        skipped |= {n for n in names if (relative / n).as_posix() in _INSTRUCTOR_ONLY}
        return skipped
    return ignore


def student_readme(text: str) -> str:
    """The README without its instructor sections, list items and instructor-only commands."""
    out, skipping, item = [], False, None
    for line in [*text.splitlines(), ""]:
        if item is not None and line.startswith((" ", "\t")) and line.strip():
            item.append(line)  # a continuation line of the list item
            continue
        if item is not None:
            if not _INSTRUCTOR_ITEM.search("\n".join(item)):
                out.extend(item)
            item = None
        heading = re.match(r"^##\s+(.*?)\s*$", line)
        if heading:
            skipping = heading.group(1) in _INSTRUCTOR_SECTIONS
        if skipping or any(command in line for command in _INSTRUCTOR_COMMANDS) or is_region_marker(line):
            continue
        if line.startswith(("- ", "* ")):
            item = [line]
            continue
        out.append(line)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"  # a left-out item leaves one gap


def student_makefile(text: str) -> str:
    """The Makefile without the rules that need ``notebooks/``, ``solutions/`` or ``tests/``."""
    out, skipping = [], False
    for line in text.splitlines():
        rule = re.match(r"^([A-Za-z][\w-]*)\s*:(?!=)", line)
        if rule:
            skipping = rule.group(1) in _INSTRUCTOR_TARGETS
        elif skipping and line and not line.startswith("\t"):
            skipping = False
        if skipping:
            continue
        if line.startswith(".PHONY:"):
            line = " ".join(w for w in line.split() if w not in _INSTRUCTOR_TARGETS)
        if line.startswith("#") and any(f"make {target}" in line for target in _INSTRUCTOR_TARGETS):
            continue
        out.append(line)
    return "\n".join(out).rstrip() + "\n"


def student_pyproject(text: str) -> str:
    """``pyproject.toml`` with the instructor-only packages taken out of the package list."""
    dropped = {p.replace("/", ".") for p in _INSTRUCTOR_ONLY if not p.endswith(".py")}
    for package in dropped:  # the package and every subpackage of it
        text = re.sub(rf',?\s*"{re.escape(package)}(\.[\w.]+)?"', "", text)
    return text


def _apply_umask_modes(top: Path) -> None:
    """Give ``top`` and everything in it the umask's modes (mkdtemp made ``top`` 0700; copies
    keep the modes of the instructor's checkout)."""
    file_mode, folder_mode = new_file_modes()
    for folder, folders, files in os.walk(top):
        os.chmod(folder, folder_mode)
        for name in files:
            path = Path(folder, name)
            if path.is_symlink():
                continue
            executable = path.stat().st_mode & stat.S_IXUSR
            os.chmod(path, folder_mode if executable else file_mode)


def write_release(out: Path | str, root: Path = ROOT) -> Path:
    """Write the student copy of the course to ``out`` and return its path.

    Args:
        out: a folder that does not exist yet, or an empty one.
        root: the course repository (the one holding ``notebooks/``).

    Raises:
        FileExistsError: ``out`` exists and is not empty (nothing is overwritten).
        FileNotFoundError: ``root`` has no ``exercises/`` (run the build first).

    Example:
        >>> write_release("/tmp/onnx-course-student")  # doctest: +SKIP
    """
    out = Path(out)
    if os.path.isfile(out):
        raise FolderNotEmptyError(f"{out} is a file; give a new folder for the release")
    out = output_folder(out, "release folder")  # a name, a link, a folder that cannot be written
    root, out = Path(root).resolve(), out.resolve()
    if out.exists() and any(out.iterdir()):
        raise FolderNotEmptyError(f"{out} already exists and is not empty; give a new folder "
                              "(the release never overwrites anything)")
    if out == root or root in out.parents:
        raise InvalidArgumentError(f"{out} is inside the course repository; write the release elsewhere")
    missing = [name for name in ("README.md", "Makefile", "pyproject.toml")
               if not (root / name).is_file()]
    if missing:
        raise MissingFileError(f"{root} lacks {', '.join(missing)}: it is not the course "
                               "repository (run release from a checkout of it)")
    if not sorted((root / "exercises").glob("*.ipynb")):
        raise MissingFileError(f"{root / 'exercises'} holds no notebooks; run "
                                "`python -m course_utils build` first")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name in SHIPPED:
            source = root / name
            if source.is_dir():
                shutil.copytree(source, staging / name, ignore=_ignore(root))
            elif source.exists():
                shutil.copy2(source, staging / name)
        (staging / "README.md").write_text(
            student_readme((root / "README.md").read_text(encoding="utf-8")), encoding="utf-8")
        (staging / "Makefile").write_text(
            student_makefile((root / "Makefile").read_text(encoding="utf-8")), encoding="utf-8")
        (staging / "pyproject.toml").write_text(
            student_pyproject((root / "pyproject.toml").read_text(encoding="utf-8")), encoding="utf-8")
        _apply_umask_modes(staging)
        if out.exists():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _run_cli(args) -> int:
    out = write_release(args.out, root=ROOT)
    files = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"wrote the student release to {out} ({files} files): exercises/, course_utils/ "
          "without the grader and its hidden checks, README, Makefile, pyproject.toml, "
          "environment.yml")
    return 0


def add_cli(subparsers) -> None:
    """Register ``release``."""
    parser = subparsers.add_parser(
        "release", help="write the student copy (no notebooks/, solutions/ or hidden checks)")
    parser.add_argument("out", type=path_arg("OUT"),
                        help="a new or empty folder to write the student copy into")
    parser.set_defaults(func=_run_cli)
