"""What the browser gets from a course Netron server: Netron's page, patched, and one model.

Covers: the HTTP server behind :func:`course_utils.netron_view.serve_netron`, one
per model, bound to ``127.0.0.1``: Netron's UI files from the installed ``netron``
package, its ``index.html`` naming this server's model, its ``browser.js`` with
the cookie question and the usage reporting switched off, the model's folder
under ``/data/``, and a Content-Security-Policy on every response that lets the
page connect to this server only. Does not cover: starting, stopping and showing
servers (``netron_view.py``).

Why not ``netron.serve``: it keeps the served model on its request handler
*class*, shared by every server in the process, so the last server started
serves its model on every port. Here the handler reads the model from its own
server.
"""
from __future__ import annotations

import functools
import html
import http.server
import logging
import re
import urllib.parse
from pathlib import Path

from .errors import MissingDependencyError

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
    """Serves Netron's UI files, and the model of *its own server* under ``/data/``."""

    server: "ModelServer"

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path = urllib.parse.unquote(urllib.parse.urlparse(self.path).path)
        body, content_type = None, None
        if path in ("/", "/index.html"):
            body, content_type = _index_html(self.server.model), _MIME_TYPES[".html"]
        elif path == "/browser.js":
            body, content_type = _patched_browser_js(), _MIME_TYPES[".js"]
        elif path.startswith("/data/"):
            # The model and the files next to it (external data), nothing above them.
            body = _read_inside(self.server.model.parent, path[len("/data/"):])
            content_type = "application/octet-stream"
        else:
            suffix = Path(path).suffix
            if suffix in _MIME_TYPES:
                body, content_type = _read_inside(find_netron_ui(), path.lstrip("/")), _MIME_TYPES[suffix]
        self._write(body, content_type)

    def _write(self, body: bytes | None, content_type: str | None) -> None:
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("Cache-Control", "no-store")  # a port may serve another model later
        body = body if body is not None else b"404"
        self.send_header("Content-Type", content_type if content_type else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
        logger.debug(format, *args)


def _read_inside(directory: Path, relative: str) -> bytes | None:
    base = directory.resolve()
    target = (base / relative).resolve()
    if target != base and base in target.parents and target.is_file():
        return target.read_bytes()
    return None


class ModelServer(http.server.ThreadingHTTPServer):
    """Netron's page and one model, served on ``127.0.0.1:port`` (threads die with the process)."""

    daemon_threads = True

    def __init__(self, port: int, model: Path) -> None:
        self.model = model  # read by _Handler: one model per server, never shared
        super().__init__((HOST, port), _Handler)
