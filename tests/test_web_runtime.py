"""Tests for course_utils/web_runtime.py: onnxruntime-web fetched once, checked, found offline.

No test here reads the network: tarballs are made on the spot, npm is a stand-in
script that records its calls, and the real set-up (``make setup`` made it) is only
read.
"""
import base64
import hashlib
import io
import re
import tarfile

import pytest

from conftest import in_ci
from course_utils import web_runtime
from course_utils.cli import main
from course_utils.web_runtime import (FILES, IntegrityError, WebRuntimeMissing, fetch_web_runtime,
                                      find_web_runtime, install_from_tarball)


def _tarball(path, files: dict[str, bytes], extra: dict[str, bytes] | None = None) -> str:
    """A .tgz laid out as npm packs onnxruntime-web; returns its npm integrity string."""
    with tarfile.open(path, "w:gz") as archive:
        for name, content in {**{f"package/dist/{n}": c for n, c in files.items()},
                              **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _pins(files: dict[str, bytes]) -> dict:
    return {n: (len(c), hashlib.sha256(c).hexdigest()) for n, c in files.items()}


CONTENT = {"ort.wasm.min.js": b"var ort = {};", "ort-wasm-simd-threaded.wasm": b"\0asm" + bytes(64)}


def test_a_tampered_tarball_is_refused_and_the_set_up_kept(tmp_path):
    """Is a tarball whose sha512 is not the pinned one refused, leaving the earlier set-up whole?"""
    tarball, folder = tmp_path / "onnxruntime-web.tgz", tmp_path / "env" / "onnxruntime-web"
    integrity = _tarball(tarball, CONTENT, {"package/README.md": b"read me"})
    install_from_tarball(tarball, folder, integrity=integrity, files=_pins(CONTENT))
    assert sorted(p.name for p in folder.iterdir()) == sorted([*CONTENT, "manifest.json"])
    assert (folder / "ort.wasm.min.js").read_bytes() == CONTENT["ort.wasm.min.js"]

    tampered = bytearray(tarball.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF  # one bit of the compressed stream
    tarball.write_bytes(bytes(tampered))
    with pytest.raises(IntegrityError, match="is not the pinned onnxruntime-web .*nothing was kept"):
        install_from_tarball(tarball, folder, integrity=integrity, files=_pins(CONTENT))
    assert (folder / "ort.wasm.min.js").read_bytes() == CONTENT["ort.wasm.min.js"]
    assert [p.name for p in folder.parent.iterdir()] == ["onnxruntime-web"]  # no staging left


@pytest.mark.parametrize("what", ["content", "missing", "link"])
def test_a_tarball_whose_files_are_not_the_pinned_ones_is_refused(tmp_path, what):
    """With the tarball's hash pinned, is a file of other content, a missing one or a link refused?"""
    tarball, folder = tmp_path / "t.tgz", tmp_path / "out"
    files = dict(CONTENT)
    if what == "content":
        files["ort.wasm.min.js"] = b"fetch('https://elsewhere.example')"
    elif what == "missing":
        del files["ort.wasm.min.js"]
    if what == "link":
        with tarfile.open(tarball, "w:gz") as archive:
            link = tarfile.TarInfo("package/dist/ort.wasm.min.js")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(link)
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    else:
        integrity = _tarball(tarball, files)
    with pytest.raises(IntegrityError, match="nothing was kept"):
        install_from_tarball(tarball, folder, integrity=integrity, files=_pins(CONTENT))
    assert not folder.exists()


def _fake_npm(tmp_path):
    """An npm that records each call and fails, so a test sees whether setup asked it anything."""
    calls = tmp_path / "npm-calls"
    npm = tmp_path / "npm"
    npm.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    npm.chmod(0o755)
    return str(npm), calls


def _set_up_or_skip():
    try:
        return find_web_runtime()
    except WebRuntimeMissing as missing:
        if in_ci():
            raise
        pytest.skip(str(missing))


def test_a_second_setup_asks_npm_nothing(tmp_path):
    """Once set up (make setup), does fetching again run no npm at all, so it works offline?"""
    folder = _set_up_or_skip()
    npm, calls = _fake_npm(tmp_path)
    assert fetch_web_runtime(folder, npm=npm) == folder
    assert not calls.exists()


def test_the_set_up_files_are_the_pinned_ones_and_nothing_else():
    """Does the set-up hold exactly the page's files, each with its pinned sha256?"""
    folder = _set_up_or_skip()
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "manifest.json"])
    for name, (size, sha256) in FILES.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == sha256, name


def test_without_npm_setup_says_what_to_install_in_one_line_and_goes_on(tmp_path, monkeypatch,
                                                                        capsys):
    """Without npm, does `web-runtime --fetch` (make setup) print one line naming the install
    command and exit 0, and does the check afterwards name the same fix?"""
    monkeypatch.setattr(web_runtime, "web_runtime_folder", lambda: tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["web-runtime", "--fetch"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("note: onnxruntime-web not set up: npm is not")
    assert "sudo apt-get install nodejs npm" in out
    with pytest.raises(WebRuntimeMissing, match="apt-get install nodejs npm.*make setup") as missing:
        find_web_runtime()
    assert "\n" not in str(missing.value)


def test_a_failing_npm_is_one_line_and_nothing_is_written(tmp_path):
    """Does an npm that fails (offline, a registry error) give one line with npm's words?"""
    npm, calls = _fake_npm(tmp_path)
    with pytest.raises(WebRuntimeMissing, match=r"`npm pack` failed .*make setup"):
        fetch_web_runtime(tmp_path / "out", npm=npm)
    assert "onnxruntime-web@" + web_runtime.WEB_RUNTIME_VERSION in calls.read_text()
    assert "--ignore-scripts" in calls.read_text() and not (tmp_path / "out").exists()


def test_the_makefile_keeps_the_files_where_the_library_looks(root):
    """Is the Makefile's setup target the manifest inside web_runtime_folder() of the venv?"""
    makefile = (root / "Makefile").read_text()
    target = re.search(r"^WEB_RUNTIME := \$\(VENV\)/(\S+)$", makefile, re.M).group(1)
    folder = web_runtime.web_runtime_folder()
    assert target == "/".join([*folder.relative_to(folder.parents[2]).parts, "manifest.json"])
    for rule in ("setup", "lab", "test"):
        assert re.search(rf"^{rule}: .*\$\(WEB_RUNTIME\)", makefile, re.M), rule
