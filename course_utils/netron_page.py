"""What the browser gets from a course Netron server: Netron's page, patched, and one model.

Covers: the HTTP server behind :func:`course_utils.netron_view.serve_netron`, one
per model, bound to ``127.0.0.1``: Netron's UI files from the installed ``netron``
package, its ``index.html`` naming this server's model, its ``browser.js`` with
the cookie question and the usage reporting switched off, the model and the
external-data files it names under ``/data/`` (nothing else from its folder),
answers only to ``Host: 127.0.0.1:PORT`` or ``localhost:PORT`` (so a page
elsewhere cannot read the model through DNS rebinding), every method but GET and
HEAD answered with 405 (after the Host check), and a Content-Security-Policy on
every response, http.server's own refusals included, that lets the page connect
to this server only. Does not cover: starting, stopping and showing
servers (``netron_view.py``).

Why not ``netron.serve``: it keeps the served model on its request handler
*class*, shared by every server in the process, so the last server started
serves its model on every port. Here the handler reads the model from its own
server.
"""
from __future__ import annotations

import functools
import html
import http
import http.server
import logging
import os
import re
import shutil
import stat
import threading
import urllib.parse
from pathlib import Path

from .errors import CourseError, MissingDependencyError
from .onnx_files import list_external_data, load_onnx_file

#: Netron is only ever bound to the loopback interface: nobody else on the
#: network can read the model.
HOST = "127.0.0.1"

#: Sent with every response: the page may fetch, send and show only what this
#: server serves (analytics beacons and IP lookups are refused by the browser).
CONTENT_SECURITY_POLICY = "connect-src 'self' data: blob:; img-src 'self' data: blob:"

#: Edits to Netron's ``browser.js`` (pattern, replacement, what it switches off).
_PRIVACY_PATCHES = [
    (r"if \(this\._getCookie\('consent'\) \|\| this\._getCookie\('_ga'\)\) \{",
     "if (true) { // onnx-course: no cookie question, nothing is reported",
     "the cookie question and the IP-lookup request made before it"),
    (r"(const telemetry = async \(\) => \{\s*if \()this\._environment\.packaged(\))",
     r"\1false\2",
     "usage and error reporting to the analytics service"),
]

_MIME_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css",
    ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json",
    ".svg": "image/svg+xml", ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf",
}

logger = logging.getLogger(__name__)


def find_netron_ui() -> Path:
    """The folder of Netron's UI files in the installed ``netron`` package.

    Raises:
        MissingDependencyError: ``netron`` is not installed (an ``ImportError`` too).
    """
    try:
        import netron
    except ImportError as error:
        raise MissingDependencyError(f"the netron package is not installed ({error}); run "
                                     "`pip install netron` in this environment (or `make setup`)"
                                     ) from None
    return Path(netron.__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def _patched_browser_js() -> bytes:
    text = (find_netron_ui() / "browser.js").read_text(encoding="utf-8")
    for pattern, replacement, what in _PRIVACY_PATCHES:
        text, count = re.subn(pattern, replacement, text, count=1)
        if count != 1:
            # The Content-Security-Policy still keeps every request on this machine.
            logger.warning("this netron's browser.js has changed: could not switch off %s; the "
                           "browser still sends nothing off this machine, but Netron may ask "
                           "about cookies (pip install netron==9.3.3 restores the tested "
                           "version)", what)
    return text.encode("utf-8")


def _index_html(model: Path) -> bytes:
    import netron

    name = html.escape(model.name, quote=True)
    meta = "\n".join([
        '<meta name="type" content="Python">',
        f'<meta name="version" content="{html.escape(netron.__version__)}">',
        f'<meta name="file" content="/data/{html.escape(urllib.parse.quote(model.name))}">',
        f'<meta name="name" content="{name}">',
        f'<meta name="identifier" content="{name}">',
    ])
    text = (find_netron_ui() / "index.html").read_text(encoding="utf-8")
    text = re.sub(r'<meta name="version" content="[^"]*">', lambda _: meta, text, count=1)
    return text.encode("utf-8")


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves Netron's UI files, and the model of *its own server* under ``/data/``.

    Nothing is looked up on disk from the request: the path is matched against
    an allow-list (the UI's own files, the model and its external-data files),
    so a NUL byte, a very long or encoded name, ``..`` or a symlink loop is
    simply not in it.
    """

    server: "ModelServer"
    timeout = 30  # seconds a connection may stay silent (a stuck client frees its thread)

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self.do_GET()

    def __getattr__(self, name: str):
        # http.server answers a method without a do_* handler with 501, a page of its own
        # without this server's headers; every other method gets a 405 here instead.
        if name.startswith("do_"):
            return self._other_method
        raise AttributeError(name)

    def _host_allowed(self) -> bool:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) == 1 and hosts[0].strip().lower() in self.server.allowed_hosts:
            return True
        # A page elsewhere that points its own name at 127.0.0.1 (DNS rebinding) sends
        # its own name here: only the addresses this server gave out are answered.
        self._write(403, b"this server answers only to " + self.server.url.encode())
        return False

    def _other_method(self) -> None:
        self.close_connection = True  # a body the request may carry is never read
        if self._host_allowed():
            self._write(405, b"405: this server only answers GET and HEAD",
                        extra={"Allow": "GET, HEAD"})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line or headers) with this
        server's headers too."""
        self.close_connection = True
        self._write(code, f"{code}: {message or http.HTTPStatus(code).phrase}".encode(
            "latin-1", "replace"))

    def do_GET(self) -> None:  # noqa: N802
        if not self._host_allowed():
            return
        if not self.path.startswith("/") or len(self.path) > _MAX_PATH_LENGTH:
            self._write(414 if len(self.path) > _MAX_PATH_LENGTH else 400, b"bad path")
            return
        path = urllib.parse.unquote(self.path.split("?", 1)[0].split("#", 1)[0])
        if path in ("/", "/index.html"):
            self._write(200, _index_html(self.server.model), _MIME_TYPES[".html"])
        elif path == "/browser.js":
            self._write(200, _patched_browser_js(), _MIME_TYPES[".js"])
        elif path.startswith("/data/"):
            target = self.server.data_files().get(path[len("/data/"):])
            self._write_file(target, "application/octet-stream")
        else:
            name = path[1:]
            target = _ui_files().get(name)
            self._write_file(target, _MIME_TYPES.get(Path(name).suffix, "text/plain"))

    def _write_file(self, target: Path | None, content_type: str) -> None:
        if target is None:
            self._write(404, b"404")
            return
        try:
            handle = open(target, "rb")
        except OSError:  # removed or replaced since the server started
            self._write(404, b"404")
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            self._write(200, None, content_type, length=size)
            if self.command != "HEAD":
                shutil.copyfileobj(handle, self.wfile, 1 << 20)

    def _write(self, status: int, body: bytes | None, content_type: str = "text/plain",
               length: int | None = None, extra: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("Cache-Control", "no-store")  # a port may serve another model later
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length if body is None else len(body)))
        self.end_headers()
        if body is not None and self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
        logger.debug(format, *args)


#: Longer request paths are refused (Netron's own are under 100 characters).
_MAX_PATH_LENGTH = 2048


@functools.lru_cache(maxsize=None)
def _ui_files() -> dict[str, Path]:
    """Netron's page files by name: the regular files of the package folder that a page uses."""
    folder = find_netron_ui()
    return {p.name: p for p in folder.iterdir()
            if p.suffix in _MIME_TYPES and p.is_file() and not p.is_symlink()}


def _regular_file_inside(folder: Path, relative: str) -> Path | None:
    """``folder/relative`` if it is a regular file inside ``folder`` (links resolved), else None."""
    if not relative or "\0" in relative or Path(relative).is_absolute():
        return None
    try:
        target = (folder / relative).resolve(strict=True)
        inside = folder in target.parents and stat.S_ISREG(target.stat().st_mode)
    except (OSError, RuntimeError, ValueError):  # missing, a link loop, a name too long
        return None
    return target if inside else None


def _model_files(model: Path) -> dict[str, Path]:
    """What ``/data/`` serves: the model, and the external-data files it names inside its folder."""
    files = {model.name: model}
    try:
        proto = load_onnx_file(model, load_weights=False)
        locations = list_external_data(proto)
    except (CourseError, OSError, ValueError):
        return files  # not an ONNX file Netron needs more for (or another format): the model only
    folder = model.parent
    for location in locations:
        target = _regular_file_inside(folder, location)
        if target is None:
            logger.warning("%s names its external data %r, which is not a file inside %s; it is "
                           "not served (Netron will say the weights are missing): re-export the "
                           "model with its data beside it", model.name, location, folder)
        else:
            files[location] = target
    return files

class ModelServer(http.server.ThreadingHTTPServer):
    """Netron's page and one model, served on ``127.0.0.1:port`` (threads die with the process)."""

    daemon_threads = True

    def __init__(self, port: int, model: Path) -> None:
        self.model = model  # read by _Handler: one model per server, never shared
        super().__init__((HOST, port), _Handler)
        port = self.server_address[1]
        self.url = f"http://{HOST}:{port}/"
        self.allowed_hosts = {f"{HOST}:{port}", f"localhost:{port}"}
        self._files_lock = threading.Lock()
        self._files: dict[str, Path] = {}
        self._files_key: tuple | None = None

    def data_files(self) -> dict[str, Path]:
        """The allow-list of ``/data/``, read again when the model file changes."""
        try:
            info = self.model.stat()
            key = (info.st_mtime_ns, info.st_size)
        except OSError:
            return {}
        if not stat.S_ISREG(info.st_mode):  # replaced by a pipe or a device: never opened
            return {}
        with self._files_lock:
            if key != self._files_key:
                self._files, self._files_key = _model_files(self.model), key
            return self._files

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-answer is not worth a traceback in the kernel's log.
        logger.debug("Netron request from %s failed", client_address, exc_info=True)
