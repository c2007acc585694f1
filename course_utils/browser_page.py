"""What a browser gets from a course page server, and what it may send back.

Covers: :class:`PageServer`, an HTTP server on ``127.0.0.1`` for one browser run
of a model: one page per configuration (``/run/N/``: a provider, a thread count,
cross-origin isolated or not), the course's harness script, the user's script,
the model, the inputs, the pinned onnxruntime-web files, and ``POST /results``,
where the page sends what it computed: only JSON from this server's own pages,
within a size and time limit, checked by ``browser_results.parse_result`` before
anything of it is kept, one result per page. The server's
rules are Netron's (``netron_page.py``): it answers only to ``Host:
127.0.0.1:PORT`` or ``localhost:PORT`` (DNS rebinding), nothing is looked up on
disk from a request (every path is matched against an allow-list), and every
response carries a Content-Security-Policy that lets the page load and connect
to this server only. Does not cover: opening a browser or waiting for it
(``browser_run.py``), the result's fields (``browser_results.py``).

Cross-origin isolation: several WebAssembly threads need ``SharedArrayBuffer``,
which a browser grants only to a cross-origin isolated page. An isolated page is
sent ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp`` (enough for a page in its own
tab) and ``Document-Isolation-Policy: isolate-and-require-corp`` (Chromium 137
and later: the page is isolated inside JupyterLab's frame too, whose own page is
not; measured: without it the frame ran on one thread).
"""
from __future__ import annotations

import atexit
import http.server
import json
import logging
import re
import secrets
import threading
import time
from pathlib import Path

from .browser_results import BadResult, PageConfig, parse_result
from .errors import InvalidArgumentError
from .web_runtime import BUNDLES, FILES, WEB_RUNTIME_VERSION

__all__ = ["PageServer", "HARNESS", "CONTENT_SECURITY_POLICY"]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
#: The course's page script: runs the user's script on every item, times it, posts the result.
HARNESS = Path(__file__).resolve().parent / "web" / "harness.js"
#: Sent with every response: scripts, workers, fetches and WebAssembly from this server only.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; "
                           "worker-src 'self'; connect-src 'self'; img-src 'self'; "
                           "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
_ISOLATION_HEADERS = [("Cross-Origin-Opener-Policy", "same-origin"),
                      ("Cross-Origin-Embedder-Policy", "require-corp"),
                      ("Document-Isolation-Policy", "isolate-and-require-corp")]
_MIME = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
         ".json": "application/json", ".html": "text/html; charset=utf-8"}
_MAX_PATH_LENGTH = 512
_RUN_PAGE = re.compile(r"/run/(\d{1,3})/(config\.json)?")
#: The largest result body taken, and the seconds a client may take to send it.
MAX_RESULT_BYTES = 16 << 20
BODY_TIMEOUT_S = 10.0



class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers the run's pages and files from an allow-list, and takes results by POST."""

    server: "PageServer"
    timeout = 30  # seconds a connection may stay silent (a stuck client frees its thread)

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path = self._checked_path()
        if path is None:
            return
        server, page = self.server, _RUN_PAGE.fullmatch(path)
        if page and int(page.group(1)) < len(server.pages):
            index = int(page.group(1))
            config = server.pages[index]
            if page.group(2):
                self._write(200, json.dumps(server.page_config(index)).encode(), _MIME[".json"])
            else:
                server.page_requested.set()
                isolation = _ISOLATION_HEADERS if config.cross_origin_isolated else []
                self._write(200, server.page_html(index), _MIME[".html"], isolation)
            return
        if path == "/":
            self.send_response(303)
            self.send_header("Location", "/run/0/")
            self._common_headers()
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        found = server.files().get(path)
        if found is None:
            self._write(404, b"404")
            return
        content = found.read_bytes() if isinstance(found, Path) else found
        # A worker's script is its own document: isolated workers need the policy on it.
        extra = [_ISOLATION_HEADERS[1]] if path.endswith(".mjs") else []
        self._write(200, content, _MIME.get(Path(path).suffix, "application/octet-stream"), extra)

    def do_POST(self) -> None:  # noqa: N802
        path = self._checked_path()
        if path is None:
            return
        if path != "/results":
            self._write(405, b"only /results takes a POST", extra=[("Allow", "GET, HEAD")])
            return
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in self.server.allowed_origins:
            self._write(403, b"results come from this server's own pages only")
            return
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            self._write(415, b"a result is sent as application/json")
            return
        if self.headers.get("Transfer-Encoding"):
            self._write(411, b"send a Content-Length, not a chunked body")
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._write(411, b"a Content-Length is required")
            return
        if int(length) > self.server.max_result_bytes:
            self._write(413, f"a result is at most {self.server.max_result_bytes} bytes".encode())
            return
        body = self._read_body(int(length))
        if body is None:
            return
        try:
            result = self.server.accept_result(body)
        except BadResult as bad:
            logger.info("refused a result: %s", bad)
            self._write(bad.status, str(bad).encode())
            return
        self._write(200, json.dumps({"received": result["index"]}).encode(), _MIME[".json"])

    def _refuse_method(self) -> None:
        self.close_connection = True  # a body the request may carry is never read
        if self._checked_path() is not None:  # a Host of another name gets its 403 first
            self._write(405, b"this server takes GET, HEAD and POST /results",
                        extra=[("Allow", "GET, HEAD, POST")])

    def __getattr__(self, name: str):
        # http.server answers a method without a do_* handler with 501, a page of its own
        # without this server's headers; every other method gets the 405 above instead.
        if name.startswith("do_"):
            return self._refuse_method
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line or headers) with this
        server's headers too."""
        self.close_connection = True
        self._write(code, f"{code}: {message or http.HTTPStatus(code).phrase}".encode(
            "latin-1", "replace"))

    def _read_body(self, length: int) -> bytes | None:
        chunks, left, deadline = [], length, time.monotonic() + BODY_TIMEOUT_S
        while left:
            if time.monotonic() > deadline:
                self._write(408, b"the body did not arrive in time")
                return None
            chunk = self.rfile.read1(min(left, 1 << 16))
            if not chunk:
                return None  # the client left
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _checked_path(self) -> str | None:
        """The request's path once Host and shape are fine; else the refusal is sent, None."""
        hosts = self.headers.get_all("Host") or []  # exactly one, as Netron's server asks
        if len(hosts) != 1 or hosts[0].strip().lower() not in self.server.allowed_hosts:
            # A page elsewhere that points its own name at 127.0.0.1 (DNS rebinding) sends
            # its own name here: only the addresses this server gave out are answered.
            self._write(403, b"this server answers only to " + self.server.url.encode())
            return None
        if not self.path.startswith("/") or len(self.path) > _MAX_PATH_LENGTH:
            self._write(414 if len(self.path) > _MAX_PATH_LENGTH else 400, b"bad path")
            return None
        return self.path.split("?", 1)[0].split("#", 1)[0]

    def _common_headers(self) -> None:
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")  # a port may serve another run later

    def _write(self, status: int, body: bytes, content_type: str = "text/plain",
               extra: list | None = None) -> None:
        self.send_response(status)
        self._common_headers()
        for name, value in extra or []:
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
        logger.debug(format, *args)


class PageServer(http.server.ThreadingHTTPServer):
    """One browser run's pages and files on ``127.0.0.1`` (a free port); results kept as posted.

    ``with PageServer(...) as server:`` serves in a background thread until the block
    ends (or call :meth:`start` and :meth:`stop`); a server still running when the
    Python process (the notebook's kernel) exits is stopped then.

    Args:
        pages: one :class:`PageConfig` per page; the pages run one after another.
        script: the user's JavaScript (defines ``predict`` and maybe ``createSession``).
        model: the ``.onnx`` bytes.
        inputs: the items' bytes, ``count`` items of ``item_shape`` in ``dtype``.
        runtime: the folder of the onnxruntime-web files (``web_runtime.find_web_runtime``).
        files: more files the page may fetch, under ``/files/NAME`` (e.g. external data).
        warmup: untimed passes over every item after the first (which keeps the outputs).
        rounds: timed passes over every item after those.
        max_result_bytes: the largest result body taken.
    """

    daemon_threads = True

    def __init__(self, pages: list[PageConfig], *, script: str, model: bytes, inputs: bytes,
                 dtype: str, item_shape: tuple[int, ...], count: int, runtime: Path,
                 files: dict[str, bytes] | None = None, warmup: int = 2, rounds: int = 5,
                 max_values: int = 100_000, max_result_bytes: int = MAX_RESULT_BYTES) -> None:
        if not pages:
            raise InvalidArgumentError("a run needs at least one PageConfig")
        self.pages, self.warmup, self.rounds, self.count = list(pages), warmup, rounds, count
        self.dtype, self.item_shape, self.max_values = dtype, tuple(item_shape), max_values
        self.max_result_bytes = max_result_bytes
        self.token = secrets.token_urlsafe(16)
        self._thread: threading.Thread | None | bool = None  # False once stopped
        self.results: dict[int, dict] = {}
        self.changed = threading.Condition()
        self.page_requested = threading.Event()
        self._files: dict[str, bytes | Path] = {
            "/harness.js": HARNESS, "/user.js": script.encode("utf-8"),
            "/model.onnx": model, "/inputs.bin": inputs}
        self._files.update({f"/ort/{name}": runtime / name for name in FILES})
        for name, content in (files or {}).items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", name):
                raise InvalidArgumentError(f"file name {name!r}: letters, digits, '.', '_', '-'")
            self._files[f"/files/{name}"] = content
        super().__init__((HOST, 0), _Handler)  # port 0: the OS picks a free one, no race
        self.port = self.server_address[1]
        self.url = f"http://{HOST}:{self.port}/"
        self.allowed_hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}
        self.allowed_origins = {f"http://{host}" for host in self.allowed_hosts}

    def files(self) -> dict[str, bytes | Path]:
        """The allow-list: request path -> bytes, or a file read when asked for."""
        return self._files

    def page_url(self, index: int = 0) -> str:
        """The address of page ``index`` (the first page leads to the next)."""
        return f"{self.url}run/{index}/"

    def page_config(self, index: int) -> dict:
        """What the harness reads from ``/run/N/config.json``."""
        config = self.pages[index]
        return {"token": self.token, "index": index, "pages": len(self.pages),
                "provider": config.provider, "threads": config.threads,
                "label": config.describe(), "version": WEB_RUNTIME_VERSION,
                "count": self.count, "dtype": self.dtype, "item_shape": list(self.item_shape),
                "warmup": self.warmup, "rounds": self.rounds, "max_values": self.max_values,
                "next": f"/run/{index + 1}/" if index + 1 < len(self.pages) else None}

    def page_html(self, index: int) -> bytes:
        """Page ``index``: onnxruntime-web's bundle for its provider, the harness, the script."""
        bundle = BUNDLES[self.pages[index].provider]
        return (f'<!doctype html><html><head><meta charset="utf-8"><title>onnxruntime-web run</title>'
                f'</head><body style="font:13px sans-serif;margin:6px">'
                f'<div id="status">loading onnxruntime-web {WEB_RUNTIME_VERSION}...</div>'
                f'<script src="/ort/{bundle}"></script><script src="/harness.js"></script>'
                f'<script src="/user.js"></script></body></html>').encode("utf-8")

    def accept_result(self, body: bytes) -> dict:
        """Check a posted body and keep it (one result per page: a second one is refused)."""
        result = parse_result(body, token=self.token, pages=len(self.pages),
                              max_items=self.count, max_values=self.max_values)
        with self.changed:
            if result["index"] in self.results:
                raise BadResult(409, f"page {result['index']} has already sent its result")
            self.results[result["index"]] = result
            self.changed.notify_all()
        return result

    def start(self) -> "PageServer":
        """Serve in a background thread; returns the server."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"page-{self.port}", daemon=True)
            with _RUNNING_LOCK:
                _RUNNING.add(self)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (safe to call twice)."""
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        thread, self._thread = self._thread, False
        if thread:
            self.shutdown()  # returns once serve_forever has returned
        if thread is not False:
            self.server_close()

    @property
    def running(self) -> bool:
        """True while the server answers requests."""
        return bool(self._thread) and self._thread.is_alive()

    def __enter__(self) -> "PageServer":
        return self.start()

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-answer is not worth a traceback in the kernel's log.
        logger.debug("page request from %s failed", client_address, exc_info=True)


_RUNNING: set[PageServer] = set()
_RUNNING_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _RUNNING_LOCK:
        servers = list(_RUNNING)
    for server in servers:
        server.stop()
