"""One door for the paths the package reads and writes: what each one is, checked before any work.

Covers: :class:`PathPlan`, the paths one command reads and writes, each checked
when it is named (a regular file or a folder as expected, readable, of bounded
size, never a FIFO, device or socket (never opened through: a pipe would hang the
command), no link loop, a dangling link named as such, names of at most 255 bytes
that are UTF-8 text, an output folder that can really be written) and every
output checked against every input of the same command (never the same file,
through links or hard links included; never inside a folder the command reads
or must not write into); :func:`read_bytes`, which reads a checked file without
ever blocking on it; :func:`write_atomic`, which writes a file in one step once the
work has succeeded (a reader sees the old file or the new one, never half of one).
Every refusal is a :class:`~course_utils.errors.CourseError` whose message names
the path, what it is and the next step. Standard library only. Does not cover:
what a file holds (``datafiles.py``, ``onnx_files.py``), nor the grader's reading
of submissions (``grading/submissions.py``), which has rules of its own.
"""
from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from .errors import CourseError, MissingFileError

__all__ = ["PathPlan", "BadPathError", "FolderGivenError", "shown", "check_name", "input_file",
           "input_folder", "read_bytes", "output_file", "output_folder", "write_atomic",
           "MAX_NAME_BYTES"]

#: The longest name of one file or folder (Linux, macOS and Windows file systems).
MAX_NAME_BYTES = 255
#: The longest path the operating system accepts (Linux's PATH_MAX, less the final NUL).
MAX_PATH_BYTES = 4095


class BadPathError(CourseError, ValueError):
    """A path that cannot be used as given: its name, its kind, a link or a permission."""


class FolderGivenError(CourseError, IsADirectoryError):
    """A folder was given where a file was expected."""


def shown(path) -> str:
    """``path`` as a message can show it: undecodable bytes and control characters escaped, long
    names shortened."""
    text = os.fsdecode(os.fspath(path))
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= 160 else f"{text[:80]}...{text[-60:]}"


_KINDS = [(stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_name(path, verb: str = "use") -> Path:
    """Refuse a path whose name the system or the course's files cannot carry.

    Args:
        path: the path.
        verb: what the command would do with it ("read", "write"), for messages.

    Raises:
        BadPathError: a NUL character, a name of more than 255 bytes, a path of
            more than 4095 bytes, or a name that is not valid UTF-8 text.
    """
    raw = os.fsencode(os.fspath(path))
    if not raw:
        raise BadPathError(f"cannot {verb} an empty path; give the path of a file or folder")
    if b"\0" in raw:
        raise BadPathError(f"the path {shown(path)} holds a NUL character, which no file name "
                           "can; check the path")
    if len(raw) > MAX_PATH_BYTES:
        raise BadPathError(f"cannot {verb} {shown(path)}: the path has {len(raw):,} bytes, more "
                           f"than the {MAX_PATH_BYTES:,} the system accepts; use a shorter path")
    for part in raw.split(b"/"):
        if len(part) > MAX_NAME_BYTES:
            raise BadPathError(f"cannot {verb} {shown(path)}: the name {shown(os.fsdecode(part))} "
                               f"has {len(part)} bytes, more than the {MAX_NAME_BYTES} a file "
                               "name may have; check the path")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPathError(f"the name of {shown(path)} is not valid UTF-8 text (bytes from "
                           "another encoding); rename it with UTF-8 characters only, e.g. in a "
                           "file manager, then give the new name") from None
    return Path(os.fsdecode(raw))


def _refuse_os_error(error: OSError, path, verb: str, what: str, missing_hint: str):
    """The CourseError for an OSError met while looking at ``path``."""
    where = shown(path)
    if error.errno == errno.ENOENT:
        if os.path.islink(path):
            target = shown(os.readlink(path))
            return MissingFileError(f"no {what} at {where}: it is a symbolic link to {target}, "
                                    "which does not exist (a dangling link); fix or remove the "
                                    "link, or give the real path")
        return MissingFileError(f"no {what} at {where}; {missing_hint}")
    if error.errno == errno.ELOOP:
        return BadPathError(f"cannot {verb} {where}: it is a symbolic link loop (links that "
                            "point at each other, never at a file); give the real path")
    if error.errno == errno.ENOTDIR:
        return BadPathError(f"cannot {verb} {where}: a part of it is a file, not a folder; "
                            "check the path")
    if error.errno in (errno.EACCES, errno.EPERM):
        return BadPathError(f"cannot {verb} {where}: permission denied; check its permissions "
                            "and those of its folders (ls -l), or use a copy you can read")
    return BadPathError(f"cannot {verb} {where} ({error.strerror or error}); check the path")


def _stat(path, verb: str, what: str, missing_hint: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as error:
        raise _refuse_os_error(error, path, verb, what, missing_hint) from None
    except ValueError:  # a NUL byte: refused by check_name before
        raise BadPathError(f"the path {shown(path)} cannot name a file; check it") from None


def input_file(path, what: str = "file", *, max_bytes: int | None = None,
               missing_hint: str = "check the path") -> Path:
    """Check that ``path`` is a regular file this process can read, of at most ``max_bytes``.

    Args:
        path: the file.
        what: what it should be, for messages ("grades file", "ONNX model").
        max_bytes: the largest size that makes sense for it (None: any).
        missing_hint: the next step when nothing is there.

    Returns:
        The path (a ``Path``). The file was opened without blocking and closed:
        a FIFO, a device or a socket is refused without being read.

    Raises:
        MissingFileError: nothing there, or a dangling link.
        FolderGivenError: a folder.
        BadPathError: a name the system cannot carry, a link loop, a FIFO, a
            device or a socket, no permission, or a file over ``max_bytes``.
    """
    path = check_name(path, "read")
    info = _stat(path, "read", what, missing_hint)
    if stat.S_ISDIR(info.st_mode):
        raise FolderGivenError(f"no {what} at {shown(path)}: it is a folder; give the path of "
                               "the file inside it")
    if not stat.S_ISREG(info.st_mode):
        raise BadPathError(f"no {what} at {shown(path)}: it is {_kind(info.st_mode)}, not a "
                           f"regular file (reading it could wait forever or never end); give "
                           "the path of a regular file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise BadPathError(f"{shown(path)} has {info.st_size:,} bytes, more than the "
                           f"{max_bytes:,} any {what} has; is it the right file?")
    os.close(_open_regular(path, what))
    return path


def _open_regular(path: Path, what: str) -> int:
    """A read descriptor of ``path``, which must still be a regular file once open."""
    try:
        # O_NONBLOCK: a FIFO put in its place since the check opens at once instead of waiting.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise _refuse_os_error(error, path, "read", what, "check the path") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise BadPathError(f"no {what} at {shown(path)}: it is {_kind(info.st_mode)}, not a "
                           f"regular file; give the path of a regular file")
    return fd


def read_bytes(path, what: str = "file", *, max_bytes: int, missing_hint: str = "check the path",
               checked: bool = False) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, read without ever blocking.

    Args:
        path, what, max_bytes, missing_hint: see :func:`input_file`.
        checked: the path already went through :func:`input_file` (its name and kind).

    Raises:
        see :func:`input_file`.
    """
    path = Path(path) if checked else input_file(path, what, max_bytes=max_bytes,
                                                 missing_hint=missing_hint)
    fd = _open_regular(path, what)
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as error:
            raise BadPathError(f"cannot read {shown(path)} ({error.strerror}); check the file "
                               "or copy it again") from None
    if len(data) > max_bytes:  # it grew since the check
        raise BadPathError(f"{shown(path)} has more than the {max_bytes:,} bytes any {what} "
                           "has; is it the right file?")
    return data


def input_folder(path, what: str = "folder", *, missing_hint: str = "check the path") -> Path:
    """Check that ``path`` is a folder this process can list.

    Raises:
        MissingFileError: nothing there, or a dangling link.
        BadPathError: a file or anything else that is not a folder, a name the
            system cannot carry, a link loop, or no permission to list it.
    """
    path = check_name(path, "read")
    info = _stat(path, "read", what, missing_hint)
    if not stat.S_ISDIR(info.st_mode):
        kind = "a file" if stat.S_ISREG(info.st_mode) else _kind(info.st_mode)
        raise BadPathError(f"{shown(path)} is {kind}, not a folder; give the {what}")
    try:
        with os.scandir(path):
            pass
    except OSError as error:
        raise _refuse_os_error(error, path, "list", what, missing_hint) from None
    return path


def _existing_ancestor(path: Path, shown_as: str) -> Path:
    """The nearest folder of ``path`` that exists (the others are created when writing)."""
    ancestor = path.parent
    while True:
        try:
            info = os.stat(ancestor)
        except FileNotFoundError:
            if ancestor == ancestor.parent:
                raise BadPathError(f"cannot write {shown_as}: none of its folders exists; "
                                   "check the path") from None
            ancestor = ancestor.parent
            continue
        except OSError as error:
            if error.errno == errno.ENOTDIR:  # a file further up: found on the way up
                ancestor = ancestor.parent
                continue
            raise _refuse_os_error(error, ancestor, "write in", "folder", "check the path") from None
        if not stat.S_ISDIR(info.st_mode):
            raise BadPathError(f"cannot write {shown_as}: {shown(ancestor)} is a file, not a "
                               "folder; choose another path")
        return ancestor


def _probe_writable(folder: Path, shown_as: str) -> None:
    """Create and remove an empty file in ``folder``: permissions, read-only mounts and full
    disks are all found, for root too (whom permission bits do not stop)."""
    probe = folder / f".course-write-probe-{secrets.token_hex(6)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as error:
        raise BadPathError(f"cannot write {shown_as}: {shown(folder)} is not writable "
                           f"({error.strerror}); choose a folder you can write to") from None
    os.close(fd)
    os.unlink(probe)


def _stat_output(path: Path, verb: str, what: str, instead: str):
    """What is at an output path now (``os.stat``), or None where nothing is (or a file stands
    where one of its folders should be: the caller names that); a dangling link is refused."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise BadPathError(f"cannot {verb} {shown(path)}: it is a symbolic link to "
                               f"{shown(os.readlink(path))}, which does not exist (a dangling "
                               f"link); remove the link or give another {instead}") from None
        return None
    except OSError as error:
        if error.errno != errno.ENOTDIR:
            raise _refuse_os_error(error, path, verb, what, "check the path") from None
        return None


def output_file(path, what: str = "output file") -> Path:
    """Check that ``path`` can become a file: the name, what is there now, a writable folder.

    An existing regular file is replaced (see :func:`write_atomic`); missing
    folders are created when it is written.

    Raises:
        FolderGivenError: ``path`` is a folder.
        BadPathError: a name the system cannot carry; a FIFO, device, socket,
            dangling link or link loop there; a file where one of its folders
            should be; a folder that cannot be written.
    """
    path = check_name(path, "write")
    where = shown(path)
    info = _stat_output(path, "write", what, "path")
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise FolderGivenError(f"cannot write {where}: it is a folder; give the path of the file "
                               f"to write, e.g. {shown(path / 'out')}")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise BadPathError(f"cannot write {where}: it is {_kind(info.st_mode)}, not a regular "
                           "file; give the path of a file")
    folder = _existing_ancestor(path, where)
    _probe_writable(folder, where)
    return path


def output_folder(path, what: str = "output folder") -> Path:
    """Check that ``path`` is a folder (or can become one) this process can write into.

    Raises:
        BadPathError: a name the system cannot carry, a file or anything else
            that is not a folder there, a dangling link, a folder that cannot be
            written.
    """
    path = check_name(path, "write")
    where = shown(path)
    info = _stat_output(path, "write into", what, "folder")
    if info is not None and not stat.S_ISDIR(info.st_mode):
        kind = "a file" if stat.S_ISREG(info.st_mode) else _kind(info.st_mode)
        raise BadPathError(f"cannot write into {where}: it is {kind}; give a folder for the "
                           f"{what} (it is created if missing)")
    _probe_writable(path if info is not None else _existing_ancestor(path, where), where)
    return path


def write_atomic(path, data: bytes | str, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` in one step: a reader sees the old file or the new one.

    The bytes go to a new file beside ``path`` (created exclusively, never
    through a link), which then replaces ``path``; missing folders are created.

    Args:
        path: the file to write.
        data: bytes, or text (written as UTF-8).
        mode: the new file's permissions exactly (e.g. 0o600 for grades); None
            gives what any new file gets (0o666 less the process's umask).
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name[:200]}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o666 if mode is None else 0o600)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _identity(path: Path):
    """(device, inode) of what ``path`` names now, or None when nothing is there."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


class PathPlan:
    """The paths one command reads and writes, each checked when it is named.

    Inputs are named first, then outputs; each output is checked against every
    input (and every other output) as it is named, before any long work starts:
    never the same file (links and hard links included), never inside a folder
    the command reads or was told to keep out of (:meth:`keep_out_of`), never a
    folder that holds one of the inputs.

    Example:
        >>> plan = PathPlan()  # doctest: +SKIP
        >>> grades = plan.input_file("grades.json", "grades file", max_bytes=2**26)  # doctest: +SKIP
        >>> out = plan.output_file("canvas.csv", "--out")  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._inputs: list[tuple[Path, str, bool]] = []  # (path, what, is a folder)
        self._outputs: list[tuple[list[Path], str]] = []  # (the files it writes, what)
        self._forbidden: list[tuple[Path, str]] = []

    # ------------------------------------------------------------ inputs
    def input_file(self, path, what: str = "file", **kwargs) -> Path:
        """:func:`input_file`, remembered as an input of this command."""
        path = input_file(path, what, **kwargs)
        self._inputs.append((path, what, False))
        return path

    def input_folder(self, path, what: str = "folder", **kwargs) -> Path:
        """:func:`input_folder`, remembered as an input of this command."""
        path = input_folder(path, what, **kwargs)
        self._inputs.append((path, what, True))
        return path

    def add_input(self, path, what: str, folder: bool = False) -> None:
        """Remember a path the command reads that was checked elsewhere (a module's source)."""
        self._inputs.append((Path(path), what, folder))

    def keep_out_of(self, folder, why: str) -> None:
        """Refuse outputs inside ``folder``; ``why`` ends the sentence "it lies inside FOLDER, ..."."""
        self._forbidden.append((Path(folder), why))

    # ------------------------------------------------------------ outputs
    def output_file(self, path, what: str = "output file") -> Path:
        """:func:`output_file`, then checked against every input and output of this command."""
        path = output_file(path, what)
        self._check_output(path, what, [path], folder=False)
        return path

    def output_folder(self, path, what: str = "output folder", *, files=None) -> Path:
        """:func:`output_folder`, then checked against every input and output of this command.

        Args:
            files: the names (relative paths) the command writes inside; None
                when they depend on the data, and then no input may lie inside.
        """
        path = output_folder(path, what)
        targets = [path / name for name in files] if files is not None else None
        self._check_output(path, what, targets, folder=True)
        return path

    def _check_output(self, path: Path, what: str, targets, folder: bool) -> None:
        real = _real(path)
        for forbidden, why in self._forbidden:
            if _real(forbidden) in (real, *real.parents):
                raise BadPathError(f"cannot write {shown(path)} ({what}): it lies inside "
                                   f"{shown(forbidden)}, {why}; write it elsewhere")
        for source, source_what, source_is_folder in self._inputs:
            real_source = _real(source)
            if source_is_folder and real_source in (real, *real.parents):
                raise BadPathError(f"cannot write {shown(path)} ({what}): it lies inside "
                                   f"{shown(source)}, the {source_what} this command reads; "
                                   "write it outside that folder")
            if folder and targets is None and real in real_source.parents:
                raise BadPathError(f"cannot write into {shown(path)} ({what}): it holds "
                                   f"{shown(source)}, the {source_what} this command reads, "
                                   "which could be overwritten; choose another folder")
            for target in targets or []:
                self._refuse_same(target, what, source, f"the {source_what} this command reads")
        for others, other_what in self._outputs:
            for other in others:
                for target in targets or []:
                    self._refuse_same(target, what, other, f"where {other_what} goes too")
        self._outputs.append((targets or [], what))

    @staticmethod
    def _refuse_same(target: Path, what: str, other: Path, role: str) -> None:
        same = _real(target) == _real(other)
        identity = None if same else _identity(target)
        if same or (identity is not None and identity == _identity(other)):
            how = "" if same else " (the same file through a link or a hard link)"
            raise BadPathError(f"cannot write {shown(target)} ({what}): it is {shown(other)}, "
                               f"{role}{how}, which writing would destroy; give another path")
