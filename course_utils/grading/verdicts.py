"""From an exercise's answer in a kernel to a verdict: the grader's side of ``answers.py``.

Covers: ``read_verdict``, which runs ``answers.capture`` in a kernel right after an
exercise's cell, then reads what it wrote as bounded data (regular files only, no links,
no FIFOs, nothing outside the notebook's folder, sizes, files and items capped in
total) and runs the public and hidden checks on it, both in a limited child process
(``isolated.py``: a student's model runs there, never in the grader); a function
answer is called on the checks' own inputs (``answers.probe``), each call relayed to
the kernel by the grader, which also answers, call by call, the scripted work among
those inputs (its script never enters the kernel). The kernel never sees a check or a verdict. Every step
takes its time from the one limit the grader gives. A student's string reaches
feedback only as a short escaped excerpt (at most 40 characters), or, once a
reference solution has run in the kernel, only as its length.

Any kernel with this small interface will do: ``workdir`` (the notebook's folder, on
the grader's side), ``iodir`` and ``io_path`` (the folder the kernel writes, on the
grader's side and as the kernel sees it), ``inbox_dir`` and ``inbox_path`` (a folder
the grader writes and the kernel only reads), ``alive()`` and
``run(code, limit, silent=True)`` returning a ``sandbox.CellResult``.
The grader passes its sandboxed kernel (``sandbox.py``); the tests pass nbval's kernel
for the trusted solutions notebooks, so one execution serves nbval and the checks.
Does not cover: running notebooks (``grader.py``) or the checks (``exercise_checks/``,
``hidden_checks/``).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import time
import uuid
from pathlib import Path

from ..answers import (ANSWER_FILE, MAX_ARRAY_BYTES, AnswerSpec, CaptureError, ScriptAnswers, answer_spec,
                       decode, encode)
from ..checks import NEEDS_BROWSER, CheckFailed, Verdict, drives_browser, load_check_modules, run_checks_on_data

__all__ = ["read_verdict", "read_answer", "status_text", "FunctionRaised", "NOT_ATTEMPTED", "NEEDS_BROWSER",
           "excerpt"]

NOT_ATTEMPTED = "not attempted"
#: Answer files copied out of a kernel's folder may be at most this large, each...
MAX_ANSWER_FILE_BYTES = 512 * 2**20
#: ...and all the files of one answer together at most this large and this many.
MAX_ANSWER_FILES_BYTES = 1024 * 2**20
MAX_ANSWER_FILES = 16
#: All the arrays of one answer (or of one function result) together.
MAX_ANSWER_ARRAYS_BYTES = 4 * MAX_ARRAY_BYTES
MAX_ANSWER_ARRAYS = 64
#: Nodes of one answer's data (values, keys, containers).
MAX_ANSWER_ITEMS = 400_000
_MAX_DEPTH = 30
_MAX_JSON_BYTES = 16 * 2**20
#: The longest a capture or one call of a function answer may take, within the grader's limit.
CAPTURE_SECONDS = 60
PROBE_SECONDS = 20
#: Memory the child that decodes and checks one answer may use (beyond its preloaded libraries).
CHECK_MEMORY_BYTES = 4 * 2**30
_EXCERPT_CHARS = 40


# ------------------------------------------------------------------ what feedback may quote

def excerpt(text) -> str:
    """A student's string as feedback may show it: escaped (repr), at most 40 characters."""
    shown = repr(str.__str__(text)) if isinstance(text, str) else repr(text)
    return shown if len(shown) <= _EXCERPT_CHARS else shown[:_EXCERPT_CHARS - 1] + "\u2026"


def _unquoted(text) -> str:
    """:func:`excerpt` without its quotes (the cut mark kept)."""
    shown = excerpt(text)
    return shown[1:] if shown.endswith("\u2026") else shown[1:-1]


class _Quoted(str):
    """A string from the student's answer: compares as itself, prints as a short escaped excerpt."""

    __slots__ = ()

    def __str__(self):  # str(answer) in a check keeps it a _Quoted
        return self

    def __repr__(self):
        return excerpt(self)

    def __format__(self, spec):
        return format(excerpt(self), spec)


class _Withheld(str):
    """As ``_Quoted``, where no excerpt may be shown (a reference ran in the kernel): its length only."""

    __slots__ = ()

    def __str__(self):
        return self

    def __repr__(self):
        return f"<a str of {len(self)} characters>"

    def __format__(self, spec):
        return format(repr(self), spec)


class _QuotedPath(type(Path())):
    """A path written into the answer's data: prints (and opens) as a short escaped excerpt only.

    Never a file of the grader's: opening it opens the excerpt, relative to the checks'
    empty working folder. Files an answer names are copied out and given as plain paths.
    """

    __slots__ = ()

    def __str__(self):
        return _unquoted(super().__str__())

    def __repr__(self):
        return f"Path({excerpt(super().__str__())})"

    def __format__(self, spec):
        return format(str(self), spec)


def _wrap_strings(tree, wrap, budget: list, depth: int = 0):
    """Count and bound the nodes of a captured tree; wrap its string values for feedback."""
    budget[0] += 1
    if budget[0] > MAX_ANSWER_ITEMS or depth > _MAX_DEPTH:
        raise CaptureError("the answer is nested too deeply or is too large to grade")
    if type(tree) is str:
        return wrap(tree)
    if isinstance(tree, list):
        return [_wrap_strings(v, wrap, budget, depth + 1) for v in tree]
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            if key in ("$dict", "$tuple", "$set", "v", "items"):
                out[key] = _wrap_strings(value, wrap, budget, depth + 1)
            else:  # markers and their arguments ($npy names, $file paths) stay as they are
                out[key] = value
        if "$dict" in out and not (isinstance(out["$dict"], list) and all(
                isinstance(p, list) and len(p) == 2 for p in out["$dict"])):
            raise CaptureError("the captured answer is malformed")
        return out
    return tree


# ------------------------------------------------------------------ bounded reads

def _open_dir(path: Path, parent_fd=None) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)


def _open_regular(dir_fd: int, name: str, cap: int) -> int:
    """Open a regular file (no link, no FIFO or device) in a folder the sandbox can write."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ValueError(f"{excerpt(name)} is not a regular file")
    if info.st_size > cap:
        os.close(fd)
        raise ValueError(f"{excerpt(name)} is larger than {cap // 2**20} MiB")
    return fd


def _read_regular(dir_fd: int, name: str, cap: int) -> bytes:
    """Read a regular file from a folder the sandbox can write, at most ``cap`` bytes."""
    fd = _open_regular(dir_fd, name, cap)
    try:
        chunks = []
        _stream(fd, chunks.append, cap, f"{excerpt(name)} is larger than {cap // 2**20} MiB")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _stream(fd: int, write, cap: int, too_large: str) -> int:
    """Hand ``fd``'s bytes to ``write`` in 1 MiB chunks; ValueError(too_large) past ``cap``."""
    total = 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return total
        total += len(chunk)
        if total > cap:
            raise ValueError(too_large)
        write(chunk)


def _short_name(part: str) -> str:
    """A path component as a copy is named: the name itself if short and plain, else its excerpt
    (so that feedback quoting a copy's name quotes at most 40 characters of the student's)."""
    return part if len(part) <= _EXCERPT_CHARS and part.isprintable() else _unquoted(part)


def _copy_out(root: Path, relative: str, dest: Path, cap: int) -> tuple[Path, int]:
    """Copy root/relative (no links, no '..') to dest/<relative, each name cut to an excerpt>,
    streamed; the copy and its size."""
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        raise ValueError("the answer's path leaves the notebook's folder")
    fd = _open_dir(root)
    try:
        for part in parts[:-1]:
            next_fd = _open_dir(Path(part), fd)
            os.close(fd)
            fd = next_fd
        source = _open_regular(fd, parts[-1], min(cap, MAX_ANSWER_FILE_BYTES))
    finally:
        os.close(fd)
    target = dest.joinpath(*map(_short_name, parts))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for number in range(2, MAX_ANSWER_FILES + 2):  # two long names may share an excerpt
            if not os.path.lexists(target):
                break
            target = target.with_name(f"{number}-{target.name}")
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            total = _stream(source, lambda chunk: os.write(out, chunk), cap,
                            f"the answer's files are larger than {cap // 2**20} MiB in all")
        finally:
            os.close(out)
    finally:
        os.close(source)
    return target, total


def _load_npy(data: bytes):
    """An array from .npy bytes, its header checked against the bytes there are (no pickles)."""
    import io

    import numpy as np
    from numpy.lib import format as npy

    stream = io.BytesIO(data)
    version = npy.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(stream)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = npy.read_array_header_2_0(stream)
    else:
        raise CaptureError("an array of the answer has an unknown format")
    if dtype.hasobject or dtype.kind not in "biufcUS" or len(shape) > 32:
        raise CaptureError("an array of the answer is not plain data")
    count = 1
    for dim in shape:
        count *= int(dim)
    offset = stream.tell()
    if count * dtype.itemsize != len(data) - offset:
        raise CaptureError("an array of the answer does not hold the data its header claims")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def _load_capture(folder: Path, file_path, function, wrap=str):
    """Decode answer.json written by a capture in the sandbox: data only, bounded in total."""
    fd = _open_dir(folder)
    try:
        payload = json.loads(_read_regular(fd, ANSWER_FILE, _MAX_JSON_BYTES).decode("utf-8"))
        arrays, used = {}, [0]

        def load_array(name):
            if name in arrays:
                return arrays[name]
            if "/" in name or not name.endswith(".npy") or len(arrays) >= MAX_ANSWER_ARRAYS:
                raise CaptureError("the captured answer is malformed or holds too many arrays")
            data = _read_regular(fd, name, MAX_ARRAY_BYTES + 2**16)
            used[0] += len(data)
            if used[0] > MAX_ANSWER_ARRAYS_BYTES:
                raise CaptureError(f"the answer's arrays hold more than "
                                   f"{MAX_ANSWER_ARRAYS_BYTES // 2**20} MiB in all")
            arrays[name] = _load_npy(data)
            return arrays[name]

        if not isinstance(payload, dict):
            raise CaptureError("the captured answer is malformed")
        if "value" in payload:
            tree = _wrap_strings(payload["value"], wrap, [0])
            return "value", decode(tree, load_array, file_path, function, path=_QuotedPath)
        return ("undefined", str(payload["undefined"])) if "undefined" in payload else (
            "raised" if "raised" in payload else "error",
            str(payload.get("raised") or payload.get("error"))[:300])
    finally:
        os.close(fd)


# ------------------------------------------------------------------ the verdict

def read_verdict(kernel, exercise_id: str, scratch: Path, *, limit: float | None = None,
                 quote: bool = True) -> Verdict:
    """Read the exercise's answer from ``kernel`` as data and run every check on it.

    Args:
        kernel: a kernel with the interface described in this module's docstring.
        exercise_id: e.g. ``"02.1"``; its answer is declared with ``register_answer``.
        scratch: an empty folder of the grader's where answer files are copied.
        limit: seconds for everything (the capture, copies, checks and calls of a
            function answer); None for the defaults (trusted notebooks).
        quote: False once a reference solution has run in the kernel: feedback then
            shows a string of the answer by its length only, never an excerpt.

    Returns:
        The :class:`~course_utils.checks.Verdict` of the public and hidden checks,
        or a failed one that says why the answer could not be read or checked.
    """
    from .isolated import ChildFailed, run_limited

    load_check_modules()  # they declare the answers
    spec = answer_spec(exercise_id)
    limit = CAPTURE_SECONDS + 120 if limit is None else limit
    deadline = time.monotonic() + limit
    name = f"capture-{uuid.uuid4().hex}"  # the kernel makes it; nothing can be planted in advance
    code = (f"__import__('course_utils.answers', fromlist=['capture']).capture("
            f"{spec.exercise!r}, {spec.variable!r}, {spec.kind!r}, {spec.extract!r}, "
            f"{kernel.io_path + '/' + name!r})")
    capture_limit = max(1.0, min(CAPTURE_SECONDS, limit))
    result = kernel.run(code, capture_limit, silent=True)
    if result.status != "ok":
        return Verdict(exercise_id, False, f"could not read `{spec.variable}` after the cell "
                       f"({status_text(result, capture_limit, quote)})")
    dest = scratch / exercise_id
    left = deadline - time.monotonic()
    if left <= 0:
        return Verdict(exercise_id, False, f"not checked: the time limit of {limit:.0f} s ran out")
    try:
        passed, feedback, needs_browser = run_limited(
            _check_in_child, (exercise_id, str(kernel.iodir / name), str(kernel.workdir), str(dest), quote),
            seconds=left, memory_bytes=CHECK_MEMORY_BYTES, browser=drives_browser(exercise_id),
            on_request=lambda message, seconds: _relay_probe(kernel, message, seconds))
    except ChildFailed as why:
        return Verdict(exercise_id, False, f"the answer could not be checked: reading and checking it {why}")
    finally:
        shutil.rmtree(dest, ignore_errors=True)  # the copies of this answer's files
    return Verdict(exercise_id, bool(passed) and not needs_browser, str(feedback), bool(needs_browser))


def _check_in_child(conn, exercise_id: str, folder: str, workdir: str, dest: str, quote: bool):
    """In the limited child: the answer as data, then the public and hidden checks."""
    from .hidden_checks import load_hidden_checks
    from .withheld import withhold

    load_hidden_checks()
    wrap = _Quoted if quote else _Withheld
    dest_path = Path(dest)
    said = (lambda text: text) if quote else withhold  # nothing of a tainted kernel's answer is quoted
    try:
        value = read_answer(exercise_id, Path(folder), Path(workdir), dest_path,
                            lambda variable: _Probe(conn, variable, wrap), wrap=wrap)
    except CaptureError as error:
        return False, said(str(error)), False
    except (OSError, ValueError, KeyError, TypeError, IndexError, RecursionError, MemoryError) as error:
        return False, f"the answer could not be read as data ({type(error).__name__})", False
    verdict = run_checks_on_data(exercise_id, value, include_hidden=True)
    feedback = verdict.feedback
    for prefix in (str(dest_path / "missing") + "/", str(dest_path) + "/"):
        feedback = feedback.replace(prefix, "")
    # The grader's own words (no browser here) are no answer of the student's: quoted as they are.
    return verdict.passed, feedback if verdict.needs_browser else said(feedback), verdict.needs_browser


def read_answer(exercise_id: str, folder: Path, workdir: Path, dest: Path, function, wrap=str):
    """The value the checks receive, from what ``answers.capture`` wrote into ``folder``.

    Args:
        exercise_id: the exercise whose declared answer ``folder`` holds.
        folder: the capture's folder (``answer.json`` and its ``.npy`` files).
        workdir: the notebook's folder: a file answer is copied from there only.
        dest: where copies of answer files go.
        function: ``function(variable)`` gives the callable that stands for a function answer.
        wrap: applied to every string of the answer (the grader's make them print as excerpts).

    Raises:
        CaptureError: the answer is undefined, malformed, too large, or names a file
            outside ``workdir``; the message is the student's feedback.
    """
    load_check_modules()  # they declare the answers
    spec = answer_spec(exercise_id)
    copies: dict[str, Path] = {}
    copied = [0]

    def file_path(node):
        if "$file" in node:
            relative = str(node["$file"])
            if relative in copies:
                return copies[relative]
            if len(copies) >= MAX_ANSWER_FILES:
                raise CaptureError(f"the answer names more than {MAX_ANSWER_FILES} files")
            try:
                copies[relative], size = _copy_out(workdir, relative, dest,
                                                   MAX_ANSWER_FILES_BYTES - copied[0])
            except (OSError, ValueError) as error:
                reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
                raise CaptureError(f"the file of the answer could not be read: {reason}") from None
            copied[0] += size
            return copies[relative]
        given = str(node.get("$missing_file") or node.get("$outside_file") or "missing")
        if "$outside_file" in node:
            raise CaptureError(f"{excerpt(given)} is outside the notebook's folder; save the file "
                               "next to the notebook (e.g. in artifacts/)")
        return _missing(dest, given)

    kind, value = _load_capture(folder, file_path, function, wrap)
    if kind == "undefined":
        raise CaptureError(f"{NOT_ATTEMPTED}: `{_unquoted(value)}` is not defined after the exercise's cell")
    if kind != "value":
        raise CaptureError(f"the answer could not be read as data: {excerpt(value)}")
    if spec.kind == "file" and isinstance(value, (str, os.PathLike)) and value not in copies.values():
        # Only a file copied out of the work folder may reach a check: a path written
        # into the data by hand must never open a file on the grader's side.
        value = _missing(dest, str.__str__(os.fspath(value)) if isinstance(value, str) else str(value))
    return value


def _missing(dest: Path, given: str) -> Path:
    """Where a check looks for a file that is not there: under dest/missing/, named by an excerpt
    of what the student gave (at most 40 characters reach feedback, escaped)."""
    shown = _unquoted(given).lstrip("/") or "file"
    return dest / "missing" / shown


# ------------------------------------------------------------------ function answers

class _Probe:
    """A function answer (in the checks' child): each call is relayed to the grader, which runs it."""

    def __init__(self, conn, variable: str, wrap):
        self.conn, self.variable, self.wrap = conn, variable, wrap

    def __call__(self, *args, **kwargs):
        import io

        import numpy as np

        works: dict = {}  # scripted work among the inputs: its script goes to the grader, never the kernel
        tree, arrays = encode(AnswerSpec("probe", "args"), (list(args), dict(kwargs)), works=works)
        blobs = {}
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            blobs[name] = buffer.getvalue()
        self.conn.send(("probe", self.variable, json.dumps({"value": tree}), blobs,
                        ScriptAnswers.scripts_of(works)))
        reply = self.conn.recv()
        if reply[0] != "ran":
            raise CheckFailed(str(reply[1]))
        ScriptAnswers.advance(works, reply[2])  # as far as the kernel's calls took each work
        kind, value = _load_capture(Path(reply[1]), lambda node: None, None, self.wrap)
        if kind == "raised":
            raise FunctionRaised(f"the function raised {_unquoted(value)}")
        if kind != "value":
            raise CheckFailed(f"the function's result could not be read as data: {excerpt(value)}")
        return value


_Probe.__name__ = "function"  # what feedback calls the answer's type


def _relay_probe(kernel, message, seconds: float):
    """In the grader: one call of a function answer, run in the kernel on the checks' inputs."""
    from .sandbox import write_new_file

    _, variable, payload, blobs, scripts = message
    if not kernel.alive():
        return ("failed", "the function could not be called: the kernel stopped")
    name = uuid.uuid4().hex
    inbox = Path(kernel.inbox_dir) / f"probe-{name}"
    os.mkdir(inbox, 0o755)  # the grader's folder, read-only in the sandbox
    write_new_file(inbox / ANSWER_FILE, payload.encode("utf-8"))
    for blob_name, data in blobs.items():
        write_new_file(inbox / blob_name, data)
    limit = max(1.0, min(PROBE_SECONDS, seconds - 1))
    code = (f"__import__('course_utils.answers', fromlist=['probe']).probe("
            f"{variable!r}, {kernel.inbox_path + '/probe-' + name!r}, "
            f"{kernel.io_path + '/result-' + name!r})")
    # Each call of scripted work in the kernel asks for its cost, which only the grader tells.
    answers = ScriptAnswers(scripts) if scripts else None
    extra = {"answer_input": answers.answer} if answers else {}
    result = kernel.run(code, limit, silent=True, **extra)
    if result.status != "ok":
        return ("failed", f"calling `{variable}` did not finish ({status_text(result, limit)})")
    return ("ran", str(Path(kernel.iodir) / f"result-{name}"), answers.calls() if answers else {})


class FunctionRaised(Exception):
    """The student's function raised (the type name only crosses the boundary)."""


def status_text(result, limit, quote: bool = True) -> str:
    """Why a cell did not finish, in the words feedback uses.

    ``quote=False`` (a reference solution has run in the kernel) names no exception's type
    or message: the student chooses both.
    """
    if result.status == "timeout":
        return f"the cell ran longer than {limit:.0f} s and was stopped"
    if result.status == "flood":
        return f"the cell printed more than {result.output_bytes // 2**20} MiB and was stopped"
    if result.status == "died":
        return "the kernel died (a crash, os._exit or the memory limit?)"
    if not quote:
        return ("the cell raised an exception (its type and message are not shown: a reference "
                "solution ran in this kernel before it)")
    return f"the cell raised {_unquoted(result.ename)}: {excerpt(result.evalue)}"
