"""Hostile requests for course_utils/serving.py: every one a 4xx with the right words, never a 500.

The server under test runs in a child process (loopback only), so that its
peak memory (``VmHWM``) can be read from outside: a body the server refuses
must cost it no more memory than a valid one. The fuzz test sends a bounded
number of requests under a time limit and stops by itself. Besides bodies: a
Host other than the server's own addresses, a JSON body of another type (what
another site's page can send without a preflight), headers that never end.
"""
import io
import json
import os
import random
import select
import socket
import subprocess
import sys
import time
import zipfile

import httpx
import numpy as np
import pytest

from course_utils.serving import ModelEndpoint, make_app, serve_app

# A child process serving two endpoints over a tiny numpy model: (batch, 8, 8) -> (batch, 10).
SERVER = """
import sys, threading
import numpy as np
from course_utils.serving import ModelEndpoint, make_app, serve_app
weights = np.linspace(-1, 1, 640, dtype=np.float32).reshape(64, 10)
load = lambda: (lambda x: x.reshape(len(x), -1) @ weights)
app = make_app([ModelEndpoint("json", load, shape=(8, 8), json_key="pixels", max_batch=64,
                              value_range=(0.0, 1.0)),
                ModelEndpoint("npy", load, shape=(8, 8), input_format="npy", max_batch=64)],
               body_timeout_s=1.0)
with serve_app(app) as server:
    print(server.port, flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


@pytest.fixture(scope="module")
def child():
    """(base URL, pid) of a server in a child process; stopped however the tests end."""
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


NPY = {"content-type": "application/octet-stream"}
JSON = {"content-type": "application/json"}
ONE = [[0.5] * 8] * 8  # one valid (8, 8) item


def _npy_header(shape, dtype="<f4") -> bytes:
    """A version 1.0 .npy header claiming ``shape``, padded as numpy pads it."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


def _zip_body() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", _npy(np.ones((1, 8, 8), np.float32)))
    return buffer.getvalue()


# (endpoint, request, status, words the detail must hold)
BAD_BODIES = [
    ("json", dict(content=b"[" * 1000 + b"]" * 1000, headers=JSON), 422, "levels deep"),
    ("json", dict(content=b'{"pixels": ' + b"[" * 100000, headers=JSON), 422, "levels deep"),
    ("json", dict(content=b'{"pixels": "' + b"[" * 5000 + b'"}', headers=JSON), 422, "holds strings"),
    ("json", dict(json={"pixels": [[[None] * 8] * 8]}), 422, "holds null (first at pixels[0][0][0])"),
    ("json", dict(json={"pixels": [[[True] * 8] * 8]}), 422, "holds booleans"),
    ("json", dict(json={"pixels": [[[{"a": 1}] * 8] * 8]}), 422, "holds JSON objects"),
    ("json", dict(json={"pixels": [[[0.5] * 8] * 7 + [[0.5] * 7]]}), 422,
     "ragged (rows of different lengths: pixels[0][0] has 8 entries, pixels[0][7] has 7)"),
    ("json", dict(json={"pixels": [[[0.5] * 8] * 7 + [0.5]]}), 422, "ragged: pixels[0][7] is a single value"),
    ("json", dict(content=b'{"pixels": [[' + b",".join([b"[1e30" + b",0" * 7 + b"]"] * 8)
                  + b"]]}", headers=JSON), 422, "values must lie in [0, 1]"),
    ("json", dict(content=b'{"pixels": [[' + b",".join([b"[1e39" + b",0" * 7 + b"]"] * 8)
                  + b"]]}", headers=JSON), 422, "too large for float32"),
    ("json", dict(content=b'{"pixels": [[' + b",".join([b"[" + b"9" * 5000 + b",0" * 7 + b"]"] * 8)
                  + b"]]}", headers=JSON), 422, "NaN or infinity"),
    ("json", dict(content=b'{"pixels": [[' + b",".join([b"[1e400" + b",0" * 7 + b"]"] * 8)
                  + b"]]}", headers=JSON), 422, "NaN or infinity"),
    ("json", dict(json={"pixels": [ONE] * 65}), 422, "1 to 64 items, got 65"),
    ("json", dict(json={"pixels": [[[0.5] * 8] * 7]}), 422, "got shape (1, 7, 8)"),
    ("json", dict(json={"pixels": [[ONE]]}), 422, "got shape (1, 1, 8, 8)"),
    ("json", dict(json={"pixels": 0.5}), 422, "got shape ()"),
    ("json", dict(content=_zip_body(), headers=JSON), 400, "not valid JSON"),
    ("json", dict(content=b"\xff\xfe{}", headers=JSON), 400, "not valid JSON"),
    ("npy", dict(content=_npy_header("(1000000000000,)"), headers=NPY), 400,
     "header says shape (1000000000000,)"),
    ("npy", dict(content=_npy_header("(1, 8, 8)") + b"\0" * 100, headers=NPY), 400,
     "the body carries 100"),
    ("npy", dict(content=_npy_header("(" * 3000 + ")" * 3000), headers=NPY), 400,
     "not a .npy array"),
    ("npy", dict(content=_npy_header("(1, 8, 8)", "|O"), headers=NPY), 422,
     "expected dtype float32, got object"),
    ("npy", dict(content=_npy(np.ones((1, 8, 8), np.int64)), headers=NPY), 422,
     "expected dtype float32, got int64"),
    ("npy", dict(content=_npy(np.ones((1, 64), np.float32)), headers=NPY), 422,
     "got shape (1, 64)"),
    ("npy", dict(content=_npy(np.full((1, 8, 8), np.nan, np.float32)), headers=NPY), 422,
     "NaN or infinity"),
    ("npy", dict(content=_zip_body(), headers=NPY), 400, "not a .npy array"),
    ("npy", dict(content=b"\x93NUMPY\x03\x00" + b"\0" * 60, headers=NPY), 400,
     "not a .npy array"),
    ("npy", dict(content=b"", headers=NPY), 400, "not a .npy array"),
    ("npy", dict(content=_npy_header("(-1, -1)") + b"\0" * 4, headers=NPY), 400,
     "with a negative size, which no array has"),
    ("npy", dict(content=_npy_header("(-8, -8, 1)") + b"\0" * 256, headers=NPY), 400,
     "with a negative size"),
    ("npy", dict(content=_npy(np.full((1, 8, 8), 3e38, np.float32)), headers=NPY), 422,
     "the model's scores for this input are not finite"),
    ("npy", dict(content=_npy(np.full((2, 8, 8), -1e38, np.float32)), headers=NPY), 422,
     "up to 1e+38 in magnitude"),
]


@pytest.mark.parametrize("name, request_, status, words", BAD_BODIES)
def test_bad_bodies_are_4xx_with_the_right_words(child, name, request_, status, words):
    """Is each hostile body refused with the status and words that name its problem?"""
    url, _ = child
    response = httpx.post(f"{url}/models/{name}/predict", timeout=10, **request_)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words in detail
    assert "array of shape (batch, 8, 8)" in detail  # and what to send instead


def _chunked_post(url: str, path: str, chunk: bytes, total: int, pause: float = 0.0):
    """Send a chunked body of up to ``total`` bytes; return the status line the server answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n".encode())
        sent = 0
        try:
            # Stop as soon as the server answers: it closes the connection after its answer.
            while sent < total and not select.select([client], [], [], pause)[0]:
                client.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: read what it said
        return client.recv(4096).split(b"\r\n", 1)[0].decode(), sent


def test_a_chunked_body_is_cut_at_the_limit(child):
    """Is a 50 MB chunked JSON body (no Content-Length) refused with 413 long before its end?"""
    url, pid = child
    before = _peak_rss(pid)
    status, sent = _chunked_post(url, "/models/json/predict", b"[0.5, " * 10000, 50_000_000)
    assert status.startswith("HTTP/1.1 413"), status
    assert sent < 5_000_000  # answered long before the end
    assert _peak_rss(pid) - before < 32 * 2**20


def test_a_body_that_never_ends_times_out(child):
    """Does a client that sends its body at a trickle get a 408 after the body timeout?"""
    url, _ = child
    started = time.monotonic()
    status, _ = _chunked_post(url, "/models/json/predict", b" ", 10, pause=0.15)
    assert status.startswith("HTTP/1.1 408"), status
    assert time.monotonic() - started < 5


def _random_body(rng: random.Random) -> tuple[str, dict]:
    """One random request: a mutation of a valid body, or random bytes."""
    name = rng.choice(["json", "npy"])
    if name == "npy":
        body = bytearray(_npy(np.random.default_rng(rng.randrange(10**6))
                              .random((rng.randint(0, 3), 8, rng.choice([8, 7])), np.float32)))
        for _ in range(rng.randint(0, 4)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        return name, dict(content=bytes(body[:rng.randint(0, len(body))]), headers=NPY)
    text = json.dumps({"pixels": [ONE] * rng.randint(0, 3)})
    pieces = ["[", "]", "{", "}", "null", "1e999", "-0", '"x"', ",", "true", "9" * 400, ":"]
    text = list(text)
    for _ in range(rng.randint(0, 6)):
        text.insert(rng.randrange(len(text) + 1), rng.choice(pieces))
    return name, dict(content="".join(text).encode(), headers=JSON)


def test_fuzz_no_5xx_and_bounded_memory(child):
    """Over a few hundred random bodies (bounded count and time), is no answer a 5xx?"""
    url, pid = child
    rng, deadline = random.Random(22), time.monotonic() + 20
    statuses = []
    with httpx.Client(timeout=5) as client:
        for name in ("json", "npy"):  # warm up before the memory baseline
            client.post(f"{url}/models/{name}/predict", **_random_body(rng)[1])
        before = _peak_rss(pid)
        for _ in range(400):
            if time.monotonic() > deadline:
                break
            name, request = _random_body(rng)
            statuses.append(client.post(f"{url}/models/{name}/predict", **request).status_code)
    assert len(statuses) >= 50 and all(s < 500 for s in statuses), sorted(set(statuses))
    assert {200, 400, 422} <= set(statuses)
    assert _peak_rss(pid) - before < 32 * 2**20


def test_a_body_within_the_limit_but_slow_and_chunked_still_works():
    """Is a valid body sent in small chunks (no Content-Length) answered 200?"""
    endpoint = ModelEndpoint("m", load=lambda: (lambda x: x), shape=(2,))

    def chunks():
        yield b'{"inputs": [[0.25, '
        yield b"0.5]]}"

    with serve_app(make_app([endpoint])) as server:
        response = httpx.post(f"{server.url}/models/m/predict", content=chunks(), headers=JSON,
                              timeout=10)
    assert response.status_code == 200 and response.json()["labels"] == [1]


def test_the_child_server_is_on_loopback(child):
    """Does the fuzzed server listen on 127.0.0.1 only (nothing leaves this machine)?"""
    url, pid = child
    assert url.startswith("http://127.0.0.1:")
    assert os.path.exists(f"/proc/{pid}")


def test_a_model_that_returns_the_wrong_shape_is_a_clear_500():
    """Is a loader whose model returns 1-D scores a 500 that says what the loader must return?"""
    endpoint = ModelEndpoint("flat", load=lambda: (lambda x: x.sum(axis=1)), shape=(2,))
    with serve_app(make_app([endpoint])) as server:
        response = httpx.post(f"{server.url}/models/flat/predict", json={"inputs": [[1.0, 2.0]]},
                              timeout=10)
    assert response.status_code == 500
    assert "returned an array of shape (1,)" in response.json()["detail"]
    assert "(batch, classes)" in response.json()["detail"]


def test_a_body_with_thousands_of_keys_gets_a_short_answer(child):
    """Does a JSON object of 5,000 wrong keys get a 422 that lists a few, not all of them?"""
    url, _ = child
    body = {f"key{i}": 0 for i in range(5000)}
    response = httpx.post(f"{url}/models/json/predict", json=body, timeout=10)
    assert response.status_code == 422
    assert "and 4992 more" in response.json()["detail"] and len(response.text) < 1000


# (Host header, or None for none at all): what a page on another name sends (DNS rebinding)
OTHER_HOSTS = ["evil.example", "evil.example:{port}", "127.0.0.1", "127.0.0.1:1", "localhost",
               "127.0.0.1:{port}.evil.example", "0.0.0.0:{port}", "[::1]:{port}", ""]
ROUTES = [("GET", "/health", {}),
          ("POST", "/models/json/predict", dict(json={"pixels": [ONE]})),
          ("POST", "/models/npy/predict", dict(content=_npy(np.ones((1, 8, 8), np.float32)),
                                               headers=NPY))]


@pytest.mark.parametrize("host", OTHER_HOSTS)
def test_a_request_for_another_host_gets_nothing(child, host):
    """Does every route answer 403, without the models' answers, to a Host other than
    127.0.0.1:PORT or localhost:PORT (a page on a rebinding domain cannot read it)?"""
    url, _ = child
    port = url.rsplit(":", 1)[1]
    for method, path, request in ROUTES:
        headers = {**request.get("headers", {}), "host": host.format(port=port)}
        response = httpx.request(method, url + path, timeout=10,
                                 **{**request, "headers": headers})
        assert response.status_code == 403, (path, response.text)
        assert "answers only to http://127.0.0.1:" in response.json()["detail"]
        assert "labels" not in response.text and "models" not in response.json()
    for host in (f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        assert httpx.get(url + "/health", headers={"host": host}, timeout=10).status_code == 200


@pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "text/json",
                                          "application/jsonp", "application/octet-stream"])
def test_a_json_body_of_another_type_is_refused_unread(child, content_type):
    """Is a JSON body sent as another type (what a page elsewhere can post without a CORS
    preflight: no type, text/plain, a form) a 415 that names application/json?"""
    url, _ = child
    headers = {} if content_type is None else {"content-type": content_type}
    response = httpx.post(f"{url}/models/json/predict", content=json.dumps({"pixels": [ONE]}),
                          headers=headers, timeout=10)
    assert response.status_code == 415, response.text
    detail = response.json()["detail"]
    assert "Content-Type: application/json" in detail and "array of shape (batch, 8, 8)" in detail
    for accepted in ("application/json", "Application/JSON; charset=utf-8"):
        response = httpx.post(f"{url}/models/json/predict", content=json.dumps({"pixels": [ONE]}),
                              headers={"content-type": accepted}, timeout=10)
        assert response.status_code == 200, response.text


def _status_after(port: int, sent: bytes, keep: socket.socket | None = None):
    """(status line, seconds) the server answers after ``sent`` (on ``keep`` if given)."""
    client = keep or socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        started = time.monotonic()
        client.sendall(sent)
        answer = client.recv(4096).split(b"\r\n", 1)[0].decode()
        return answer, time.monotonic() - started
    finally:
        if keep is None:
            client.close()


def _whole_answer(client: socket.socket) -> bytes:
    """The bytes of one whole HTTP/1.1 answer (headers, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += client.recv(4096)
    return head + b"\r\n\r\n" + body


def test_headers_that_never_end_get_a_408_and_the_connection_closes():
    """Does a client whose request headers never finish (or that sends nothing, or stalls in the
    headers of its second request) get a 408 after the header time limit, not hold on forever?"""
    endpoint = ModelEndpoint("m", load=lambda: (lambda x: x), shape=(2,))
    with serve_app(make_app([endpoint]), header_timeout_s=0.8) as server:
        host = f"Host: 127.0.0.1:{server.port}\r\n".encode()
        for partial in (b"GET /health HTTP/1.1\r\n" + host + b"X-Slow: ", b""):
            status, seconds = _status_after(server.port, partial)
            assert status.startswith("HTTP/1.1 408") and 0.3 < seconds < 10, (partial, status)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as kept:
            kept.sendall(b"GET /health HTTP/1.1\r\n" + host + b"\r\n")
            assert _whole_answer(kept).startswith(b"HTTP/1.1 200 OK")
            assert _status_after(server.port, b"GET /health HTTP/1.1\r\n",
                                 kept)[0].startswith("HTTP/1.1 408")
        # A request that takes its time but finishes its headers in time is answered.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
            slow.sendall(b"GET /health HTTP/1.1\r\n")
            time.sleep(0.1)
            assert _status_after(server.port, host + b"\r\n", slow)[0] == "HTTP/1.1 200 OK"
