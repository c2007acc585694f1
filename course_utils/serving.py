"""Serve models over HTTP on this machine: a FastAPI app factory and a server handle.

Covers: :func:`make_app`, which turns a few :class:`ModelEndpoint` descriptions
into a FastAPI app (models loaded once at start-up in the app's lifespan,
inputs validated with 4xx errors that name the expected shape and dtype, a
health endpoint), and :func:`serve_app`, which runs any ASGI app with uvicorn on
``127.0.0.1`` on a free port in a background thread and always stops it (context
manager, :meth:`RunningServer.stop`, and an ``atexit`` hook). Does not cover:
creating the ONNX Runtime session or the PyTorch model (the notebook writes the
loaders: that is the lesson), nor load testing (see ``loadtest.py``).

The HTTP contract of an app made by :func:`make_app`:

* ``GET /health`` -> ``{"status": "ok", "models": {name: {...}}}`` with each
  model's backend, input format, shape, dtype and how many times it was loaded.
* ``POST /models/{name}/predict`` -> ``{"model": name, "labels": [...],
  "scores": [[...], ...]}``: the arg-max class and the model's output per class
  (logits for a CNN, probabilities for a scikit-learn classifier). The body
  is JSON ``{"<json_key>": nested list}`` for ``input_format="json"``, or the
  bytes of ``numpy.save`` of an array (``Content-Type:
  application/octet-stream``) for ``input_format="npy"``.

What it refuses, and why (a page on another site must not be able to use it):

* a ``Host`` other than ``127.0.0.1:PORT`` or ``localhost:PORT``: 403 (a page on
  a domain that resolves to 127.0.0.1, DNS rebinding, would send its own name);
* a JSON body whose ``Content-Type`` is not ``application/json``: 415 (a page
  elsewhere can send ``text/plain`` or no type without asking the browser first;
  ``application/json`` needs a CORS preflight, which this server never answers);
* headers that do not arrive within ``header_timeout_s`` (10 s): 408, and the
  connection is closed; a body that does not arrive within ``body_timeout_s``: 408;
* every malformed body: a 4xx that names the problem and what to send instead;
  an input whose scores come out infinite or NaN (values far outside the
  training range): 422.
"""
import atexit
import functools
import io
import json
import logging
import math
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["ModelEndpoint", "make_app", "serve_app", "RunningServer"]

logger = logging.getLogger(__name__)

_LOOPBACK = "127.0.0.1"
_RUNNING: set["RunningServer"] = set()
_RUNNING_LOCK = threading.Lock()

# A predictor maps a validated batch (batch, *shape) to scores (batch, classes).
Predictor = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class ModelEndpoint:
    """One model the app serves at ``POST /models/{name}/predict``.

    Attributes:
        name: the URL segment, e.g. ``"digits-ort"``.
        load: called once at start-up (never per request); returns a function
            that maps a float array of shape ``(batch, *shape)`` to scores of
            shape ``(batch, classes)``, e.g. logits (numpy or torch).
        shape: the shape of one input item, without the batch, e.g. ``(8, 8)``.
        dtype: the element type the endpoint accepts (``"float32"``).
        input_format: ``"json"`` (a nested list under ``json_key``) or
            ``"npy"`` (raw ``numpy.save`` bytes, for large tensors).
        json_key: the key of the JSON body, e.g. ``"pixels"``.
        max_batch: the most items one request may carry.
        value_range: optional ``(low, high)`` the values must lie in, e.g.
            ``(0.0, 1.0)`` for images scaled the way the model was trained.
        backend: a label shown by ``/health``, e.g. ``"onnxruntime"``.
    """

    name: str
    load: Callable[[], Predictor]
    shape: tuple[int, ...]
    dtype: str = "float32"
    input_format: str = "json"
    json_key: str = "inputs"
    max_batch: int = 64
    value_range: tuple[float, float] | None = None
    backend: str = ""

    def describe(self) -> str:
        """Say in words what a request must carry (used in every 4xx message)."""
        shape = "(batch, " + ", ".join(str(d) for d in self.shape) + ")"
        if self.input_format == "json":
            return (f'a JSON object {{"{self.json_key}": [...]}} holding a {self.dtype} array '
                    f"of shape {shape}, batch 1 to {self.max_batch}")
        return (f"the bytes of numpy.save(...) of a {self.dtype} array of shape {shape}, "
                f"batch 1 to {self.max_batch}, sent as application/octet-stream")

    def max_body_bytes(self) -> int:
        """An upper bound on a valid body, so oversized requests are refused unread."""
        items = self.max_batch * math.prod(self.shape)
        per_item = 32 if self.input_format == "json" else np.dtype(self.dtype).itemsize
        return items * per_item + 4096


class _BadInput(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


#: Seconds a client may take to send its whole body; a body that never ends gets a 408.
BODY_TIMEOUT_S = 10.0
#: Seconds a client may take to send a request's headers (from its connection, or its first
#: byte after an earlier answer); headers that never end get a 408 and the connection closes.
HEADER_TIMEOUT_S = 10.0

# A JSON string, read atomically (linear time whatever the body): brackets inside it are
# not nesting.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')


async def _read_body(request, limit: int) -> bytes:
    """The body, read chunk by chunk; refused as soon as it passes ``limit`` bytes.

    The count is kept while reading, so a chunked body (no Content-Length) or one
    that lies about its length never holds more than ``limit`` bytes in memory.
    """
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BadInput(413, f"the body passed {limit:,} bytes, more than a valid request "
                                 "needs")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (strings skipped), without parsing it."""
    text = np.frombuffer(_JSON_STRING.sub(b'""', body), dtype=np.uint8)
    steps = (np.isin(text, (ord("["), ord("{"))).astype(np.int64)
             - np.isin(text, (ord("]"), ord("}"))))
    return int(np.cumsum(steps).max(initial=0))


_JSON_KINDS = {type(None): "null", bool: "booleans (true/false)", str: "strings",
               dict: "JSON objects"}


def _first_at(value, depth: int, test, path: tuple = ()):
    """The index path of the first entry ``depth`` levels down that passes ``test``."""
    if depth == 0:
        return path if test(value) else None
    for index, item in enumerate(value if isinstance(value, list) else []):
        found = _first_at(item, depth - 1, test, (*path, index))
        if found is not None:
            return found
    return None


def _nested_shape(value, key: str, expected: str) -> tuple[int, ...]:
    """The shape of nested lists of numbers, or a 422 that says what is in the way and where."""
    shape, level = [], [value]

    def where(test) -> tuple:
        return _first_at(value, len(shape), test) or ()

    def named(path: tuple) -> str:
        return key + "".join(f"[{i}]" for i in path)

    while True:
        lists = sum(isinstance(item, list) for item in level)
        if lists == 0:
            odd = next((item for item in level if type(item) is not float), float)
            if odd is not float:
                kind = _JSON_KINDS.get(type(odd), type(odd).__name__)
                raise _BadInput(422, f"'{key}' holds {kind} (first at "
                                     f"{named(where(lambda v: type(v) is not float))}); "
                                     f"expected {expected}, numbers only")
            return tuple(shape)
        if lists != len(level):
            single = named(where(lambda v: not isinstance(v, list)))
            raise _BadInput(422, f"'{key}' is ragged: {single} is a single value where its "
                                 f"neighbours are lists; expected {expected}")
        first = len(level[0])
        if any(len(item) != first for item in level):
            other = where(lambda v: len(v) != first)
            length = len(functools.reduce(lambda item, i: item[i], other, value))
            raise _BadInput(422, f"'{key}' is ragged (rows of different lengths: "
                                 f"{named(where(lambda v: True))} has {first} entries, "
                                 f"{named(other)} has {length}); expected {expected}")
        shape.append(first)
        level = [entry for item in level for entry in item]
        if not level:
            return tuple(shape)


def _parse_json(body: bytes, endpoint: ModelEndpoint) -> np.ndarray:
    expected = endpoint.describe()
    # The outer object, the batch, then one level per dimension; a little slack so that a
    # body with one extra level still gets its shape named.
    deepest = len(endpoint.shape) + 4
    depth = _json_depth(body)
    if depth > deepest:
        raise _BadInput(422, f"the body nests arrays and objects {depth} levels deep; a valid "
                             f"body is {len(endpoint.shape) + 2} deep: send {expected}")
    try:
        # parse_int=float: an integer of thousands of digits becomes inf, refused below,
        # instead of failing Python's int-conversion limit.
        payload = json.loads(body, parse_int=float)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _BadInput(400, f"the body is not valid JSON ({error}); send {expected}") from None
    if not isinstance(payload, dict) or endpoint.json_key not in payload:
        if isinstance(payload, dict):
            more = f" and {len(payload) - 8} more" if len(payload) > 8 else ""
            found = f"keys {[k[:40] for k in sorted(payload)[:8]]}{more}"
        else:
            found = f"a JSON {type(payload).__name__}"
        raise _BadInput(422, f"expected {expected}; got {found}")
    value = payload[endpoint.json_key]
    _nested_shape(value, endpoint.json_key, expected)
    return np.array(value, dtype=np.float64)  # rectangular and all numbers: checked above


def _parse_npy(body: bytes, content_type: str, endpoint: ModelEndpoint) -> np.ndarray:
    from numpy.lib import format as npy

    expected = endpoint.describe()
    if content_type.split(";")[0].strip() not in ("application/octet-stream", "application/x-npy"):
        raise _BadInput(415, f"this endpoint takes {expected}; got Content-Type "
                             f"'{content_type or 'none'}'")
    stream = io.BytesIO(body)
    try:
        version = npy.read_magic(stream)
        read_header = {(1, 0): npy.read_array_header_1_0,
                       (2, 0): npy.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"format version {version[0]}.{version[1]}")
        shape, fortran_order, dtype = read_header(stream, max_header_size=4096)
    except Exception as error:  # numpy's header reader fails in many ways on hostile bytes
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise _BadInput(400, f"the body is not a .npy array ({reason}); send {expected}") from None
    if any(size < 0 for size in shape):
        raise _BadInput(400, f"the .npy header says shape {tuple(shape)}, with a negative size, "
                             f"which no array has; send {expected}")
    if dtype != np.dtype(endpoint.dtype):
        raise _BadInput(422, f"expected dtype {endpoint.dtype}, got {dtype} "
                             f"(convert with x.astype(np.{endpoint.dtype})); send {expected}")
    # The header's promise is checked against the bytes that came before anything is
    # allocated: a 100-byte body claiming shape (10**12,) is refused here.
    needed, carried = math.prod(shape) * dtype.itemsize, len(body) - stream.tell()
    if needed != carried:
        raise _BadInput(400, f"the .npy header says shape {tuple(shape)} ({needed:,} bytes of "
                             f"data) but the body carries {carried:,}: it is cut or padded; "
                             f"send {expected}")
    flat = np.frombuffer(body, dtype=dtype, count=math.prod(shape), offset=stream.tell())
    return flat.reshape(shape, order="F" if fortran_order else "C")


def _validate(array: np.ndarray, endpoint: ModelEndpoint) -> np.ndarray:
    expected = endpoint.describe()
    if array.ndim != len(endpoint.shape) + 1 or tuple(array.shape[1:]) != endpoint.shape:
        hint = (" (for one item, wrap it in a list: a batch of 1)"
                if tuple(array.shape) == endpoint.shape else "")
        raise _BadInput(422, f"expected shape (batch, {', '.join(map(str, endpoint.shape))}), "
                             f"got shape {tuple(array.shape)}{hint}; send {expected}")
    if not 1 <= array.shape[0] <= endpoint.max_batch:
        raise _BadInput(422, f"a request carries 1 to {endpoint.max_batch} items, "
                             f"got {array.shape[0]}; send {expected}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise _BadInput(422, f"the input holds NaN or infinity; send {expected} with finite values")
    target = np.dtype(endpoint.dtype)
    if array.dtype != target:  # JSON numbers arrive as float64
        if target.kind == "f" and np.abs(array).max() > np.finfo(target).max:
            raise _BadInput(422, f"the input holds {np.abs(array).max():g}, too large for "
                                 f"{endpoint.dtype} (at most {np.finfo(target).max:g}); "
                                 f"send {expected}")
        if target.kind in "iu":
            info = np.iinfo(target)
            if (array != np.round(array)).any() or array.min() < info.min or array.max() > info.max:
                raise _BadInput(422, f"the input holds fractions or numbers outside "
                                     f"{endpoint.dtype}'s range; send {expected}")
        array = array.astype(target)
    if endpoint.value_range is not None:
        low, high = endpoint.value_range
        if array.min() < low or array.max() > high:
            raise _BadInput(422, f"values must lie in [{low:g}, {high:g}] (scaled as in training), "
                                 f"got [{array.min():g}, {array.max():g}]; send {expected}")
    return array


def make_app(endpoints: list[ModelEndpoint], *, title: str = "model server",
             body_timeout_s: float = BODY_TIMEOUT_S):
    """Build a FastAPI app that serves ``endpoints``, each loaded once at start-up.

    Args:
        endpoints: the models to serve; their names must be unique.
        title: the app's title (shown in ``/openapi.json``).
        body_timeout_s: seconds a client may take to send a body (then 408).

    Returns:
        A ``fastapi.FastAPI`` app; start it with :func:`serve_app`.

    Raises:
        ValueError: for duplicate names or an unknown ``input_format``.

    Example:
        >>> endpoint = ModelEndpoint("double", load=lambda: (lambda x: 2 * x), shape=(3,))
        >>> with serve_app(make_app([endpoint])) as server:  # doctest: +SKIP
        ...     httpx.post(f"{server.url}/models/double/predict", json={"inputs": [[1, 2, 3]]}).json()
        {'model': 'double', 'labels': [2], 'scores': [[2.0, 4.0, 6.0]]}
    """
    # No ``from __future__ import annotations`` in this module: FastAPI reads the
    # route's annotations at runtime to recognise ``request: Request``.
    import asyncio
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, HTTPException, Request
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect

    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise ValueError(f"endpoint names must be unique, got {names}; rename the duplicates")
    for e in endpoints:
        if e.input_format not in ("json", "npy"):
            raise ValueError(f"endpoint {e.name!r}: input_format must be 'json' or 'npy', "
                             f"got {e.input_format!r}")
    by_name = {e.name: e for e in endpoints}

    @asynccontextmanager
    async def lifespan(app):
        # Load every model here, once, before the first request is accepted.
        app.state.predictors = {}
        try:
            for e in endpoints:
                app.state.predictors[e.name] = e.load()
                app.state.loads[e.name] += 1
        except Exception as error:  # reported by serve_app with the endpoint's name
            app.state.startup_error = f"loading {e.name!r} failed: {type(error).__name__}: {error}"
            raise
        yield
        app.state.predictors.clear()

    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.loads = {name: 0 for name in names}
    app.state.startup_error = None

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "models": {
            e.name: {"backend": e.backend, "format": e.input_format,
                     "shape": ["batch", *e.shape], "dtype": e.dtype,
                     "loads": app.state.loads[e.name]} for e in endpoints}}

    @app.post("/models/{name}/predict")
    async def predict(name: str, request: Request) -> dict:
        endpoint = by_name.get(name)
        if endpoint is None:
            raise HTTPException(404, f"no model named {name!r}; available: {', '.join(names)} "
                                     "(see GET /health)")
        content_type = request.headers.get("content-type", "")
        if endpoint.input_format == "json" and \
                content_type.split(";")[0].strip().lower() != "application/json":
            raise HTTPException(415, f"this endpoint takes {endpoint.describe()}, sent with "
                                     "Content-Type: application/json; got Content-Type "
                                     f"'{content_type[:80] or 'none'}'")
        declared = request.headers.get("content-length")
        limit = endpoint.max_body_bytes()
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"the body has {declared} bytes, more than a valid request "
                                     f"needs; send {endpoint.describe()}")
        try:
            body = await asyncio.wait_for(_read_body(request, limit), body_timeout_s)
            if endpoint.input_format == "json":
                array = _parse_json(body, endpoint)
            else:
                array = _parse_npy(body, content_type, endpoint)
            batch = _validate(array, endpoint)
        except _BadInput as bad:
            detail = (str(bad) if endpoint.describe() in str(bad)
                      else f"{bad}; send {endpoint.describe()}")
            raise HTTPException(bad.status, detail) from None
        except asyncio.TimeoutError:
            raise HTTPException(408, f"the body did not arrive within {body_timeout_s:g} s; "
                                     f"send {endpoint.describe()} in one go") from None
        except ClientDisconnect:
            raise HTTPException(400, "the client left before sending the whole body") from None
        predictor = request.app.state.predictors[name]
        try:
            scores = np.asarray(await run_in_threadpool(predictor, batch))  # (batch, classes)
        except Exception as error:  # the input was valid, so this is the server's fault
            logger.exception("model %r failed", name)
            raise HTTPException(500, f"model {name!r} failed on a valid input: "
                                     f"{type(error).__name__}: {error}") from None
        if scores.ndim != 2 or scores.shape[0] != len(batch) or scores.dtype.kind not in "iuf":
            logger.error("model %r returned %s %s for a batch of %d", name, scores.dtype,
                         scores.shape, len(batch))
            raise HTTPException(500, f"model {name!r} returned an array of shape "
                                     f"{scores.shape} ({scores.dtype}) for a batch of "
                                     f"{len(batch)}; its loader must give scores of shape "
                                     "(batch, classes)")
        if scores.dtype.kind == "f" and not np.isfinite(scores).all():
            # JSON has no infinity or NaN (they would come out as null): the input's values are
            # so far from the training range that the model's arithmetic overflowed.
            logger.warning("model %r gave infinite or NaN scores for a finite input", name)
            raise HTTPException(422, f"the model's scores for this input are not finite "
                                     "(infinity or NaN): its values, up to "
                                     f"{float(np.abs(batch).max()):g} in magnitude, are far "
                                     "outside the range the model was trained on; send "
                                     f"{endpoint.describe()}, with values scaled as in training")
        return {"model": name, "labels": scores.argmax(axis=1).tolist(),
                "scores": scores.tolist()}

    app.add_middleware(_LoopbackHostOnly)
    return app


class _LoopbackHostOnly:
    """ASGI middleware: answer only requests whose ``Host`` is ``127.0.0.1:PORT`` or
    ``localhost:PORT`` (this server's own addresses); every other one gets a 403 unread."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            hosts = [v.decode("latin-1").strip().lower() for k, v in scope["headers"] if k == b"host"]
            port = (scope.get("server") or (None, None))[1]
            allowed = (f"{_LOOPBACK}:{port}", f"localhost:{port}")
            if len(hosts) != 1 or hosts[0] not in allowed:
                from starlette.responses import JSONResponse

                found = f"Host {hosts[0][:80]!r}" if len(hosts) == 1 else f"{len(hosts)} Host headers"
                response = JSONResponse(status_code=403, content={"detail": (
                    f"this server answers only to http://{allowed[0]}/ and http://{allowed[1]}/ "
                    f"(got {found}); call it at one of those addresses")})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _header_timeout_protocol(seconds: float):
    """uvicorn's HTTP protocol with a limit on the time a request's headers may take.

    uvicorn bounds the wait between requests on a kept-alive connection, but not a
    request whose headers never end: such a client would hold its connection
    forever. The timer starts when a connection opens or a request's first byte
    arrives, and stops with the answer; if it fires while the headers are still
    incomplete, the client gets a 408 and the connection is closed.
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    body = (f"the request's headers did not arrive within {seconds:g} s; send the whole "
            "request in one go").encode()
    answer = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
              b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))

    class Protocol(AutoHTTPProtocol):
        _header_timer = None

        def _waiting_for_headers(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._header_timer is None and not self.transport.is_closing():
                self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._waiting_for_headers():
                self._arm()  # the first byte of a new request (a no-op if already armed)
            super().data_received(data)

        def on_response_complete(self) -> None:
            self._disarm()  # idle until the next request: uvicorn's keep-alive limit applies
            super().on_response_complete()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self._waiting_for_headers() and not self.transport.is_closing():
                self.transport.write(answer)
                self.transport.close()

    return Protocol


class RunningServer:
    """A uvicorn server running in a background thread; use :func:`serve_app` to make one.

    Attributes:
        url: the base URL, ``http://127.0.0.1:<port>``.
        port: the port the operating system chose.
    """

    def __init__(self, app, *, startup_timeout: float = 60.0,
                 header_timeout_s: float = HEADER_TIMEOUT_S) -> None:
        import uvicorn

        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted
        # connections of such sockets; without it every response waits ~40 ms
        # for a delayed ACK (Nagle).
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind((_LOOPBACK, 0))  # port 0: the OS picks a free port, no race
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://{_LOOPBACK}:{self.port}"
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False,
                                lifespan="on", timeout_graceful_shutdown=5,
                                http=_header_timeout_protocol(header_timeout_s))
        self._server = uvicorn.Server(config)
        self._app = app
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}",
                                        daemon=True)
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        self._thread.start()
        deadline = time.monotonic() + startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                state = getattr(app, "state", None)
                reason = getattr(state, "startup_error", None) or (
                    f"not ready after {startup_timeout:g} s" if self._thread.is_alive()
                    else "it exited during start-up (see the log above)")
                raise RuntimeError(f"the server did not start: {reason}; fix the model "
                                   "loader and run the cell again")
            time.sleep(0.02)

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except SystemExit:  # uvicorn exits this way when the app's start-up fails
            pass

    @property
    def running(self) -> bool:
        """True while the server thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for its thread; safe to call more than once."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():  # a request is stuck: drop open connections
            self._server.force_exit = True
            self._thread.join(timeout)
        self._socket.close()
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        if self._thread.is_alive():
            raise RuntimeError(f"the server on port {self.port} did not stop within "
                               f"{2 * timeout:g} s; restart the kernel to free it")

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False

    def __repr__(self) -> str:
        return f"RunningServer(url={self.url!r}, running={self.running})"


def serve_app(app, *, startup_timeout: float = 60.0,
              header_timeout_s: float = HEADER_TIMEOUT_S) -> RunningServer:
    """Start ``app`` with uvicorn on 127.0.0.1 on a free port, in a background thread.

    Returns once the app's start-up (model loading) has finished, so the first
    request is served at once. The server only listens on the loopback address:
    nothing outside this machine can reach it.

    Args:
        app: an ASGI app, e.g. from :func:`make_app`.
        startup_timeout: seconds to wait for start-up before giving up.
        header_timeout_s: seconds a client may take to send a request's headers
            (then 408, and its connection is closed).

    Returns:
        A :class:`RunningServer`; use it in a ``with`` block, or call ``stop()``.
        Servers still running when Python exits are stopped by an ``atexit`` hook.

    Raises:
        RuntimeError: if the app failed to start (e.g. a model loader raised).

    Example:
        >>> with serve_app(app) as server:  # doctest: +SKIP
        ...     httpx.get(f"{server.url}/health").json()["status"]
        'ok'
    """
    return RunningServer(app, startup_timeout=startup_timeout, header_timeout_s=header_timeout_s)


@atexit.register
def _stop_all() -> None:
    with _RUNNING_LOCK:
        servers = list(_RUNNING)
    for server in servers:
        try:
            server.stop(timeout=2.0)
        except RuntimeError as error:
            logger.warning("%s", error)
