"""Which file is which submission: reading, parsing and identifying handed-in notebooks.

Covers: finding the notebooks in the files and folders given (in a folder of
sub-folders, each sub-folder is a student), reading each one as a regular file
(a symbolic link, FIFO or device is reported, never opened through; at most
20 MiB), parsing it in a limited child process (``isolated.py``: a notebook built
to blow up when parsed costs that child, not the grader), telling which course
notebook it is, and one record per student and course notebook. Does not cover:
grading (``grader.py``).

The course notebook is the one the file's name starts with (``00-``) and the one
its metadata names; a file whose two disagree is reported, not graded. A student
(a sub-folder of a folder given) who hands in one course notebook more than once
is graded once: the file named exactly as the course notebook wins, else the
newest (by modification time, then by path); the others are reported as
duplicates of it, and the graded copy's notes name them. Each file given by name is its
own student's (its stem). One file reached by several names (hard links, or a file given
both by name and in its folder) is read and reported once: one record per student, the
other names of the same student listed in that record's notes (:func:`fold_hard_links`).
Names that differ only by letter case or Unicode form are two students; each record says
so (:func:`mark_collisions`, the rule of ``identity.py``, which the exports follow).
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MissingFileError
from .identity import student_key
from .verdicts import excerpt

__all__ = ["Submission", "find_submissions", "read_submission", "parse_notebook", "prepare_submission",
           "mark_duplicates", "fold_hard_links", "mark_collisions", "CodeBudget", "MAX_NOTEBOOK_BYTES"]

#: Submissions larger than this are refused before they are parsed.
MAX_NOTEBOOK_BYTES = 20 * 2**20
#: A notebook is parsed in a child process with at most this much memory and time.
PARSE_MEMORY_BYTES = 1024 * 2**20
PARSE_SECONDS = 60
_KEEP_PARSED_BYTES = 2**20  # code of a submission kept between identifying and grading it...
_KEEP_PARSED_TOTAL = 64 * 2**20  # ...while all the code kept stays under this (else parsed again)
_LISTED_NAMES = 5  # other names of one file that a note lists


@dataclass
class Submission:
    path: Path
    student: str
    owner: tuple = ()  # whose work it is, for duplicates: (folder given, student) or the file itself
    error: str | None = None
    notebook: str | None = None
    mtime: float = 0.0
    duplicate_of: str | None = None
    code: list[str] | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)


class CodeBudget:
    """How much parsed code the grader keeps between identifying submissions and grading them.

    Each submission's code is kept (and spares a second parse) while the total stays under
    ``total`` bytes; past it, a submission is parsed again when its turn comes, so a batch of
    many large notebooks costs time, never the grader's memory.
    """

    def __init__(self, total: int = _KEEP_PARSED_TOTAL):
        import threading

        self.left, self._lock = total, threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > _KEEP_PARSED_BYTES or size > self.left:
                return False
            self.left -= size
            return True


def read_submission(path: Path) -> tuple[bytes, float]:
    """The file's bytes (a regular file, opened without following a link) and its mtime."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ValueError("it is a symbolic link, not a notebook file; hand in the .ipynb "
                             "file itself") from None
        raise ValueError(f"cannot read the file ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("it is not a regular file (a folder, FIFO or device); hand in the "
                             ".ipynb file itself")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"the file is {info.st_size / 2**20:.0f} MiB, over the "
                             f"{MAX_NOTEBOOK_BYTES // 2**20} MiB limit for a notebook; clear the outputs "
                             "(Edit > Clear Outputs) and submit again")
        chunks, total = [], 0
        while total <= MAX_NOTEBOOK_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"the file is over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit for a notebook")
        return b"".join(chunks), info.st_mtime
    finally:
        os.close(fd)


def _parse_in_child(conn, data: bytes):
    """In a limited child: the notebook's claimed course notebook and its code cells' sources."""
    import warnings

    import nbformat

    try:
        with warnings.catch_warnings():  # duplicated cells carry duplicate ids: harmless here
            warnings.simplefilter("ignore")
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            nbformat.validate(nb)
    except MemoryError:
        raise
    except Exception as error:  # JSON errors, validation errors, unreadable bytes
        first = str(error).splitlines()[0] if str(error) else "empty"
        return ("unreadable", f"{type(error).__name__}: {excerpt(first)}")
    meta = nb.metadata.get("course_utils", {})
    claim = meta.get("notebook") if isinstance(meta, dict) else None
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    if not all(isinstance(c, str) for c in code):
        return ("unreadable", "a code cell's source is not text")
    return ("ok", claim if isinstance(claim, str) and len(claim) < 200 else None, code)


def parse_notebook(data: bytes, seconds: float = PARSE_SECONDS) -> tuple[str | None, list[str]]:
    """(the course notebook its metadata claims, its code cells' sources), parsed in a limited child."""
    from .isolated import ChildFailed, run_limited, start_server

    start_server(checks=False)  # a process that grades has started it with the checks already
    try:
        result = run_limited(_parse_in_child, (data,), seconds=min(PARSE_SECONDS, seconds),
                             memory_bytes=PARSE_MEMORY_BYTES)
    except ChildFailed as why:
        raise ValueError(f"not a readable Jupyter notebook (parsing it {why}); ask for the .ipynb "
                         "file that JupyterLab saved") from None
    if result[0] != "ok":
        raise ValueError(f"not a readable Jupyter notebook ({result[1]}); ask for the .ipynb file "
                         "that JupyterLab saved")
    return result[1], result[2]


def _identify(claim: str | None, path: Path, sources: dict[str, Path]) -> str:
    by_name = [stem for stem in sources if path.name.startswith(stem[:3])]
    by_name = by_name[0] if len(by_name) == 1 else None
    by_content = claim if claim in sources else None
    if by_name and by_content and by_name != by_content:
        raise ValueError(f"its content is course notebook {by_content} (its metadata) but its name "
                         f"says {by_name}; rename the file or hand in the right notebook")
    if by_content or by_name:
        return by_content or by_name
    raise ValueError("cannot tell which course notebook this is: it has no course metadata and "
                     f"its name does not start with one of {sorted(s[:2] for s in sources)}; "
                     "rename it like the exercises notebook it came from")


def prepare_submission(sub: Submission, sources: dict[str, Path], budget: CodeBudget | None = None) -> None:
    """Read, parse (in a limited child) and identify one submission; errors go on the record."""
    if sub.error:  # already reported (another name of a file read once)
        return
    try:
        data, sub.mtime = read_submission(sub.path)
        claim, code = parse_notebook(data)
        del data
        sub.notebook = _identify(claim, sub.path, sources)
    except ValueError as error:
        sub.error = str(error)
        return
    if budget is not None and budget.take(sum(len(c) for c in code)):
        sub.code = code


def mark_duplicates(subs: list[Submission]) -> None:
    """One graded file per student and course notebook; the others point to it."""
    groups: dict[tuple[str, str], list[Submission]] = {}
    for sub in subs:
        if sub.error is None:
            groups.setdefault((sub.owner, sub.notebook), []).append(sub)
    for (_, notebook), group in groups.items():
        if len(group) < 2:
            continue
        # The file named exactly as the course notebook, else the newest, else the first by path.
        winner = min(group, key=lambda s: (s.path.name != f"{notebook}.ipynb", -s.mtime, str(s.path)))
        others = [sub for sub in group if sub is not winner]
        for sub in others:
            sub.duplicate_of = str(winner.path)
            sub.code = None
            sub.error = (f"not graded: the same student's notebook {notebook} again; "
                         f"{winner.path.name} is graded instead (the file named exactly as the "
                         "course notebook wins, else the newest)")
        winner.notes.append(f"this is the graded copy of notebook {notebook}; not graded: "
                            + _names([sub.path.name for sub in others]))


def _ascii(name: str) -> str:
    shown = ascii(str(name))
    return shown if len(shown) <= 40 else shown[:39] + "\u2026"


def _names(names: list[str]) -> str:
    shown = ", ".join(excerpt(name) for name in names[:_LISTED_NAMES])
    return shown + (f" and {len(names) - _LISTED_NAMES} more" if len(names) > _LISTED_NAMES else "")


def fold_hard_links(subs: list[Submission], sources=()) -> list[Submission]:
    """One record per student and file: names that reach one file (hard links, a path given twice) fold.

    Of one student's names of a file, the one named exactly as a course notebook (in
    ``sources``) stays, else the first by path; the record's notes list the others. Another
    student's name of the same file keeps one record, with an error naming the file it shares.
    Files that cannot be looked at (gone, no permission) stay, to be reported when read; only
    regular files fold (links, FIFOs and devices are reported when read).
    """
    exact = {f"{stem}.ipynb" for stem in sources}
    by_file: dict[tuple, dict[tuple, list[Submission]]] = {}
    for sub in subs:
        try:
            info = os.lstat(sub.path)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            by_file.setdefault((info.st_dev, info.st_ino), {}).setdefault(sub.owner, []).append(sub)
    dropped = set()
    for owners in by_file.values():
        first = None
        for names in owners.values():
            keep = min(names, key=lambda s: (s.path.name not in exact, str(s.path)))
            others = [s for s in names if s is not keep]
            dropped.update(id(s) for s in others)
            if others:
                keep.notes.append(f"the same file was also handed in as {len(others)} other name(s) "
                                  f"(hard links), read once: {_names([s.path.name for s in others])}")
            if first is None:
                first = keep
            else:  # another student's name of a file already handed in
                keep.error = (f"not graded: the same file as {excerpt(str(first.path))} of student "
                              f"{excerpt(first.student)} (a hard link, or a file given twice); each "
                              "file is graded once")
    return [sub for sub in subs if id(sub) not in dropped]


def mark_collisions(subs: list[Submission]) -> None:
    """Note, on each record, the names that fold to its student's (letter case, Unicode form)."""
    from .identity import colliding_names

    folded = colliding_names(sub.student for sub in subs if sub.error is None)
    for sub in subs:
        if sub.error is None:
            others = [n for n in folded.get(student_key(sub.student), []) if n != sub.student]
            if others:  # (in ASCII: the Kelvin sign and a K must not read the same here)
                names = ", ".join(map(_ascii, others[:3]))
                sub.notes.append(f"student {_ascii(sub.student)} and {names} differ only by letter case or "
                                 "Unicode form: graded as different students, and no gradebook export "
                                 "merges them (each lists them)")


def find_submissions(paths) -> list[Submission]:
    """Every notebook in ``paths`` (files, or folders searched without following links)."""
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not path.is_symlink():
            for folder, dirs, files in os.walk(path, followlinks=False):
                dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
                for name in sorted(files):
                    if not name.endswith(".ipynb"):
                        continue
                    nb_path = Path(folder) / name
                    relative = nb_path.relative_to(path)
                    student = relative.parts[0] if len(relative.parts) > 1 else nb_path.stem
                    found.append(Submission(nb_path, student, (str(path), student)))
        elif os.path.lexists(path):
            found.append(Submission(path, path.stem, ("file", os.path.abspath(path))))
        else:
            raise MissingFileError(f"{path} does not exist; give notebook files or a folder of them")
    return found
