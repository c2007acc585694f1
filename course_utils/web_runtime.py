"""onnxruntime-web, the ONNX Runtime a browser runs: fetched once by setup, checked, found offline.

Covers: the pinned npm package (its version, npm's sha512 ``integrity`` of the
tarball, the sha256 of every file kept), fetching it with npm's own client
(``npm pack``: the course names no registry, npm uses the user's configuration),
refusing a tarball whose hash differs from the pin, keeping only the files a page
needs in ``<environment>/share/onnx-course/onnxruntime-web/`` (``.venv/`` for
``make setup``, the conda environment otherwise), finding them later without the
network, and the ``web-runtime`` subcommand that ``make setup`` calls. Does not
cover: serving the files (``browser_page.py``) or running them (``browser_run.py``).

What is kept (measured on 1.31.1; the tarball is 34.6 MB, 150 MB unpacked):

* the WebAssembly provider: ``ort.wasm.min.js`` (54 kB), ``ort-wasm-simd-threaded.mjs``
  (25 kB) and ``.wasm`` (14.8 MB); one build serves one thread and several;
* the WebGPU provider: ``ort.webgpu.min.js`` (71 kB), which loads the *asyncify* build,
  ``ort-wasm-simd-threaded.asyncify.mjs`` (53 kB) and ``.wasm`` (28.7 MB).

Everything else (WebGL, the JSEP and JSPI builds, source maps, sources) is left in
the tarball, which npm keeps in its own cache, so a second fetch reads no network.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .errors import CourseError, MissingDependencyError

__all__ = ["WEB_RUNTIME_VERSION", "fetch_web_runtime", "find_web_runtime", "web_runtime_folder",
           "WebRuntimeMissing", "IntegrityError"]

logger = logging.getLogger(__name__)

PACKAGE = "onnxruntime-web"
#: The release on npm when pinned (``npm view onnxruntime-web version``), the same as the
#: Python ``onnxruntime`` of ``pyproject.toml``.
WEB_RUNTIME_VERSION = "1.31.1"
#: npm's ``dist.integrity`` of that release's tarball (``npm view onnxruntime-web@1.31.1 dist``).
INTEGRITY = ("sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZ"
             "PXrQ73k82URw==")
#: The files kept from ``package/dist/``: name -> (bytes, sha256).
FILES = {
    "ort.wasm.min.js": (53796, "b8a78c408c40da65fdc8ba0846f7b2948e92a4c6d6b23cc8e4165e428ad95443"),
    "ort-wasm-simd-threaded.mjs": (
        24738, "30ed0b5cd1182ede931fea448afb567d4dc705ec957af09f108a2be5f770dac3"),
    "ort-wasm-simd-threaded.wasm": (
        14848852, "4b884c203b0fa48d057be3332c65513ff85aa3c5bddd6946acc0fab7ecda001d"),
    "ort.webgpu.min.js": (70811, "03f4423bd12fdbf5eb4ffcf6c1a3c471c760e10c2a1533f1ca64f5a7619c7731"),
    "ort-wasm-simd-threaded.asyncify.mjs": (
        53457, "59cf781530e1a16df2a291d78798e3ec1152467edaec402d6f9599d85047c302"),
    "ort-wasm-simd-threaded.asyncify.wasm": (
        28747738, "ca319e9539cd0f1e291cf56074760121eaf39650f5dbf84b6e52c07f4b2944ec"),
}
#: The script a page loads for each provider (the others follow from it).
BUNDLES = {"wasm": "ort.wasm.min.js", "webgpu": "ort.webgpu.min.js"}
MANIFEST = "manifest.json"

NPM_TIMEOUT_S = 600  # a slow connection: 35 MB; npm retries on its own
_INSTALL_HINT = ("install Node.js with npm (Debian/Ubuntu: sudo apt-get install nodejs npm; "
                 "macOS: brew install node; conda: conda install -c conda-forge nodejs), then "
                 "run `make setup`")


class WebRuntimeMissing(MissingDependencyError):
    """onnxruntime-web is not set up here; the message says how to get it (one line)."""


class IntegrityError(CourseError, RuntimeError):
    """A tarball or a kept file whose hash is not the pinned one: nothing of it is used."""


def web_runtime_folder() -> Path:
    """Where setup keeps onnxruntime-web: ``<sys.prefix>/share/onnx-course/onnxruntime-web``.

    ``sys.prefix`` is the environment the course runs in (``.venv/`` after
    ``make setup``, the conda environment otherwise), so a new environment fetches
    again and removing the environment removes the files.
    """
    return Path(sys.prefix) / "share" / "onnx-course" / PACKAGE


def _integrity_of(path: Path) -> str:
    """npm's integrity string of a file: ``sha512-`` and the base64 of its SHA-512."""
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")


def _problem_with(folder: Path, files: dict) -> str | None:
    """Why ``folder`` is not a complete set-up of the pinned release (None: it is)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"no {folder / MANIFEST}"
    if not isinstance(manifest, dict) or manifest.get("version") != WEB_RUNTIME_VERSION:
        found = manifest.get("version") if isinstance(manifest, dict) else None
        return f"version {found!r} is set up in {folder}, the course pins {WEB_RUNTIME_VERSION}"
    for name, (size, _) in files.items():
        path = folder / name
        if not path.is_file() or path.is_symlink() or path.stat().st_size != size:
            return f"{path} is missing or has the wrong size"
    return None


@functools.lru_cache(maxsize=8)
def _hashes_match(folder: Path, key: tuple) -> str | None:
    """The first kept file whose sha256 is not pinned (read once per process and file state)."""
    for name, (_, sha256) in FILES.items():
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if digest != sha256:
            return name
    return None


def find_web_runtime(folder: Path | str | None = None, *, verify: bool = True) -> Path:
    """The folder of the pinned onnxruntime-web files, checked; or a one-line reason why not.

    Args:
        folder: where to look (default: :func:`web_runtime_folder`).
        verify: also compare every file's sha256 with the pin (44 MB read once per
            process; later calls only look at sizes and modification times).

    Returns:
        The folder holding every file of :data:`FILES`.

    Raises:
        WebRuntimeMissing: the files are not there (the message names the fix).
        IntegrityError: a file was changed after setup.

    Example:
        >>> (find_web_runtime() / "ort.wasm.min.js").is_file()  # doctest: +SKIP
        True
    """
    folder = Path(folder) if folder is not None else web_runtime_folder()
    problem = _problem_with(folder, FILES)
    if problem is not None:
        fix = "run `make setup`" if shutil.which("npm") else _INSTALL_HINT
        raise WebRuntimeMissing(f"onnxruntime-web {WEB_RUNTIME_VERSION} is not set up ({problem}); "
                                f"{fix}")
    if verify:
        key = tuple((folder / n).stat().st_mtime_ns for n in FILES)
        changed = _hashes_match(folder.resolve(), key)
        if changed is not None:
            raise IntegrityError(f"{folder / changed} differs from the onnxruntime-web "
                                 f"{WEB_RUNTIME_VERSION} that setup checked; remove {folder} "
                                 "and run `make setup` again")
    return folder


def install_from_tarball(tarball: Path | str, folder: Path | str | None = None, *,
                         integrity: str = INTEGRITY, files: dict | None = None) -> Path:
    """Check a tarball against the pinned integrity and keep only the page's files.

    Nothing is written unless the tarball's hash is the pinned one and every kept file
    is a regular file of the pinned size and sha256; the folder is then replaced as a
    whole (a half-written set-up is never left behind).

    Args:
        tarball: the ``.tgz`` that ``npm pack`` wrote.
        folder: where to keep the files (default: :func:`web_runtime_folder`).
        integrity: the expected npm integrity (``sha512-...``).
        files: name -> (size, sha256) of the files to keep from ``package/dist/``.

    Raises:
        IntegrityError: the tarball or a file in it is not the pinned one.
    """
    tarball, files = Path(tarball), FILES if files is None else files
    folder = Path(folder) if folder is not None else web_runtime_folder()
    found = _integrity_of(tarball)
    if found != integrity:
        raise IntegrityError(f"{tarball.name} is not the pinned {PACKAGE} {WEB_RUNTIME_VERSION} "
                             f"(its integrity is {found[:27]}..., the pin {integrity[:27]}...); "
                             "nothing was kept. A registry mirror or cache served another file: "
                             "`npm cache clean --force`, then `make setup` again")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the files from other users of the environment
        wanted = {f"package/dist/{name}": name for name in files}
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                name = wanted.pop(member.name, None)
                if name is None:
                    continue
                size, sha256 = files[name]
                if not member.isreg() or member.size != size:
                    raise IntegrityError(f"{member.name} in {tarball.name} is not the pinned "
                                         "file; nothing was kept")
                data = archive.extractfile(member).read()
                if hashlib.sha256(data).hexdigest() != sha256:
                    raise IntegrityError(f"{member.name} in {tarball.name} has another sha256 "
                                         "than the pin; nothing was kept")
                (staging / name).write_bytes(data)
        if wanted:
            raise IntegrityError(f"{tarball.name} lacks {sorted(wanted)}; nothing was kept")
        manifest = {"package": PACKAGE, "version": WEB_RUNTIME_VERSION, "integrity": integrity,
                    "license": "MIT", "files": {n: s for n, (_, s) in files.items()}}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        if folder.exists():
            old = folder.with_name(f".{folder.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
            staging.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def fetch_web_runtime(folder: Path | str | None = None, *, npm: str = "npm") -> Path:
    """Set up the pinned onnxruntime-web once: ``npm pack``, the integrity check, the kept files.

    A complete set-up is left as it is (nothing runs, nothing is read from the
    network). Otherwise npm's own client fetches the tarball (from its cache when it
    holds it), with the user's npm configuration (registry, proxy), and
    :func:`install_from_tarball` keeps the files.

    Args:
        folder: where to keep the files (default: :func:`web_runtime_folder`).
        npm: the npm command.

    Returns:
        The folder.

    Raises:
        WebRuntimeMissing: npm is not installed, or it could not fetch the package
            (the message says what to install or what npm said).
        IntegrityError: the tarball is not the pinned one.

    Example:
        >>> fetch_web_runtime()  # doctest: +SKIP
        PosixPath('.venv/share/onnx-course/onnxruntime-web')
    """
    folder = Path(folder) if folder is not None else web_runtime_folder()
    if _problem_with(folder, FILES) is None:
        return folder
    executable = shutil.which(npm)
    if executable is None:
        raise WebRuntimeMissing(f"onnxruntime-web not set up: npm is not installed; {_INSTALL_HINT}"
                                " (only the browser lesson needs it)")
    with tempfile.TemporaryDirectory(prefix="onnxruntime-web-") as work:
        command = [executable, "pack", f"{PACKAGE}@{WEB_RUNTIME_VERSION}", "--pack-destination",
                   work, "--ignore-scripts", "--prefer-offline", "--json", "--loglevel=error"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=NPM_TIMEOUT_S,
                                  env={**os.environ, "npm_config_update_notifier": "false",
                                       "npm_config_fund": "false", "npm_config_audit": "false"})
        except subprocess.TimeoutExpired:
            raise WebRuntimeMissing(f"onnxruntime-web not set up: `npm pack` took over "
                                    f"{NPM_TIMEOUT_S} s; check the network and run `make setup` "
                                    "again") from None
        tarballs = sorted(Path(work).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            said = " ".join((done.stderr or done.stdout).split())[:300] or f"exit {done.returncode}"
            raise WebRuntimeMissing(f"onnxruntime-web not set up: `npm pack` failed ({said}); "
                                    "check the network or npm's configuration and run `make "
                                    "setup` again")
        return install_from_tarball(tarballs[0], folder)


def _run_cli(args) -> int:
    if args.fetch:
        try:
            fetch_web_runtime()
        except WebRuntimeMissing as missing:
            # Setup goes on: everything but the browser lesson works without it.
            print(f"note: {missing}", flush=True)
            return 0
    folder = find_web_runtime()
    os.utime(folder / MANIFEST)  # newer than this module: make's target is up to date
    total = sum(size for size, _ in FILES.values())
    print(f"onnxruntime-web {WEB_RUNTIME_VERSION}: {len(FILES)} files, {total / 1e6:.1f} MB, "
          f"checked, in {folder}")
    return 0


def add_cli(subparsers) -> None:
    """Register ``web-runtime``."""
    parser = subparsers.add_parser(
        "web-runtime", help="onnxruntime-web for the browser lesson: check it, or fetch it once "
                            "with npm (make setup does)")
    parser.add_argument("--fetch", action="store_true",
                        help="fetch the pinned release with `npm pack` if it is not set up yet "
                             "(a missing npm is a note, not an error)")
    parser.set_defaults(func=_run_cli)
