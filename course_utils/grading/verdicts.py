"""From an exercise's answer in a kernel to a verdict: the grader's side of ``answers.py``.

Covers: ``read_verdict``, which runs ``answers.capture`` in a kernel right after an
exercise's cell, reads what it wrote as bounded data (regular files only, no links,
nothing outside the notebook's folder, sizes capped), calls a function answer on the
checks' own inputs (``answers.probe``), and runs the public and hidden checks on the
result in this process. The kernel never sees a check or a verdict.

Any kernel with this small interface will do: ``workdir`` (the notebook's folder, on
the grader's side), ``io_path`` (the io folder as the kernel sees it),
``prepare_io(name)`` (a fresh folder under the io folder that the kernel may write,
returned as the grader's path), ``grant(path)`` (let the kernel write ``path``),
``alive()`` and ``run(code, limit, silent=True)`` returning a ``sandbox.CellResult``.
The grader passes its sandboxed kernel (``sandbox.py``); the tests pass nbval's kernel
for the trusted solutions notebooks, so one execution serves nbval and the checks.
Does not cover: running notebooks (``grading.py``) or the checks (``exercise_checks/``,
``hidden_checks/``).
"""
from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

from ..answers import (ANSWER_FILE, MAX_ARRAY_BYTES, AnswerSpec, CaptureError, answer_spec, decode,
                      encode, write_answer)
from ..checks import CheckFailed, Verdict, load_check_modules, run_checks_on_data

__all__ = ["read_verdict", "read_answer", "status_text", "FunctionRaised", "NOT_ATTEMPTED"]

NOT_ATTEMPTED = "not attempted"
#: Answer files copied out of a kernel's folder may be at most this large.
MAX_ANSWER_FILE_BYTES = 512 * 2**20
_MAX_JSON_BYTES = 16 * 2**20
CAPTURE_SECONDS = 60
PROBE_SECONDS = 20


def _open_dir(path: Path, parent_fd=None) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)


def _read_regular(dir_fd: int, name: str, cap: int) -> bytes:
    """Read a regular file (no link) from a folder the sandbox can write, at most ``cap`` bytes."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{name} is not a regular file")
        if info.st_size > cap:
            raise ValueError(f"{name} is larger than {cap // 2**20} MiB")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                raise ValueError(f"{name} is larger than {cap // 2**20} MiB")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _copy_out(root: Path, relative: str, dest: Path) -> Path:
    """Copy root/relative (no links, no '..') to dest/relative; return the copy."""
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        raise ValueError("the answer's path leaves the notebook's folder")
    fd = _open_dir(root)
    try:
        for part in parts[:-1]:
            next_fd = _open_dir(Path(part), fd)
            os.close(fd)
            fd = next_fd
        data = _read_regular(fd, parts[-1], MAX_ANSWER_FILE_BYTES)
    finally:
        os.close(fd)
    target = dest.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def _load_capture(folder: Path, file_path, function):
    """Decode answer.json written by a capture in the sandbox: data only, bounded sizes."""
    import numpy as np

    fd = _open_dir(folder)
    try:
        payload = json.loads(_read_regular(fd, ANSWER_FILE, _MAX_JSON_BYTES).decode("utf-8"))

        def load_array(name):
            if "/" in name or not name.endswith(".npy"):
                raise CaptureError("the captured answer is malformed")
            return np.load(io.BytesIO(_read_regular(fd, name, MAX_ARRAY_BYTES + 2**16)),
                           allow_pickle=False)

        if not isinstance(payload, dict):
            raise CaptureError("the captured answer is malformed")
        if "value" in payload:
            return "value", decode(payload["value"], load_array, file_path, function)
        return ("undefined", str(payload["undefined"])) if "undefined" in payload else (
            "raised" if "raised" in payload else "error",
            str(payload.get("raised") or payload.get("error"))[:300])
    finally:
        os.close(fd)



def read_verdict(kernel, exercise_id: str, scratch: Path) -> Verdict:
    """Read the exercise's answer from ``kernel`` as data and run every check on it.

    Args:
        kernel: a kernel with the interface described in this module's docstring.
        exercise_id: e.g. ``"02.1"``; its answer is declared with ``register_answer``.
        scratch: an empty folder of the grader's where answer files are copied.

    Returns:
        The :class:`~course_utils.checks.Verdict` of the public and hidden checks,
        or a failed one that says why the answer could not be read.
    """
    load_check_modules()  # they declare the answers
    spec = answer_spec(exercise_id)
    out = kernel.prepare_io("capture")
    code = (f"__import__('course_utils.answers', fromlist=['capture']).capture("
            f"{spec.exercise!r}, {spec.variable!r}, {spec.kind!r}, {spec.extract!r}, "
            f"{kernel.io_path + '/capture'!r})")
    result = kernel.run(code, CAPTURE_SECONDS, silent=True)
    if result.status != "ok":
        return Verdict(exercise_id, False, f"could not read `{spec.variable}` after the cell "
                       f"({status_text(result, CAPTURE_SECONDS)})")
    dest = scratch / exercise_id
    try:
        value = read_answer(exercise_id, out, kernel.workdir, dest, lambda name: _Probe(kernel, name))
    except CaptureError as error:
        return Verdict(exercise_id, False, str(error))
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
        return Verdict(exercise_id, False,
                       f"the answer could not be read as data ({type(error).__name__})")
    verdict = run_checks_on_data(exercise_id, value, include_hidden=True)
    for prefix in (str(dest / "missing") + "/", str(dest) + "/"):
        verdict.feedback = verdict.feedback.replace(prefix, "")
    return verdict


def read_answer(exercise_id: str, folder: Path, workdir: Path, dest: Path, function):
    """The value the checks receive, from what ``answers.capture`` wrote into ``folder``.

    Args:
        exercise_id: the exercise whose declared answer ``folder`` holds.
        folder: the capture's folder (``answer.json`` and its ``.npy`` files).
        workdir: the notebook's folder: a file answer is copied from there only.
        dest: where copies of answer files go.
        function: ``function(variable)`` gives the callable that stands for a function answer.

    Raises:
        CaptureError: the answer is undefined, malformed, too large, or names a file
            outside ``workdir``; the message is the student's feedback.
    """
    load_check_modules()  # they declare the answers
    spec = answer_spec(exercise_id)
    copies = []

    def file_path(node):
        if "$file" in node:
            try:
                copies.append(_copy_out(workdir, str(node["$file"]), dest))
                return copies[-1]
            except (OSError, ValueError) as error:
                raise CaptureError(f"the file of the answer could not be read: {error}") from None
        given = str(node.get("$missing_file") or node.get("$outside_file") or "missing")
        if "$outside_file" in node:
            raise CaptureError(f"{given} is outside the notebook's folder; save the file "
                               "next to the notebook (e.g. in artifacts/)")
        return dest / "missing" / given.lstrip("/")

    kind, value = _load_capture(folder, file_path, function)
    if kind == "undefined":
        raise CaptureError(f"{NOT_ATTEMPTED}: `{value}` is not defined after the exercise's cell")
    if kind != "value":
        raise CaptureError(f"the answer could not be read as data: {value}")
    if spec.kind == "file" and isinstance(value, (str, os.PathLike)) and value not in copies:
        # Only a file copied out of the work folder may reach a check: a path written
        # into the data by hand must never open a file on the grader's side.
        value = dest / "missing" / os.fspath(value).lstrip("/")
    return value


class _Probe:
    """A function answer: each call runs the student's function in the kernel, on the check's inputs."""

    def __init__(self, kernel, variable: str):
        self.kernel, self.variable = kernel, variable

    def __call__(self, *args, **kwargs):
        kernel = self.kernel
        if not kernel.alive():
            raise CheckFailed("the function could not be called: the kernel stopped")
        folder = kernel.prepare_io("probe")
        tree, arrays = encode(AnswerSpec("probe", "args"), (list(args), dict(kwargs)))
        write_answer(folder / "in", {"value": tree}, arrays)
        (folder / "out").mkdir()
        for sub in ("in", "out"):
            kernel.grant(folder / sub)
        code = (f"__import__('course_utils.answers', fromlist=['probe']).probe("
                f"{self.variable!r}, {kernel.io_path + '/probe'!r})")
        result = kernel.run(code, PROBE_SECONDS, silent=True)
        if result.status != "ok":
            raise CheckFailed(f"calling `{self.variable}` did not finish "
                              f"({status_text(result, PROBE_SECONDS)})")
        kind, value = _load_capture(folder / "out", lambda node: None, None)
        if kind == "raised":
            raise FunctionRaised(f"the function raised {value}")
        if kind != "value":
            raise CheckFailed(f"the function's result could not be read as data: {value}")
        return value


_Probe.__name__ = "function"  # what feedback calls the answer's type


class FunctionRaised(Exception):
    """The student's function raised (the type name only crosses the boundary)."""


def status_text(result, limit) -> str:
    """Why a cell did not finish, in the words feedback uses."""
    if result.status == "timeout":
        return f"the cell ran longer than {limit:.0f} s and was stopped"
    if result.status == "flood":
        return f"the cell printed more than {result.output_bytes // 2**20} MiB and was stopped"
    if result.status == "died":
        return "the kernel died (a crash, os._exit or the memory limit?)"
    return f"the cell raised {result.ename}: {result.evalue[:200]}"
