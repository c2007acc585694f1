"""Tests for course_utils/browser_page.py: what a page server hands out, to whom, and what it takes.

Requests as a page elsewhere in the same browser (DNS rebinding, a cross-site form)
or a careless script would send them. The onnxruntime-web files are stand-ins
here (the server never reads them for anything but serving).
"""
import http.client
import json

import pytest

from course_utils.browser_page import CONTENT_SECURITY_POLICY, PageServer
from course_utils.browser_results import PageConfig
from course_utils.web_runtime import FILES


@pytest.fixture
def server(tmp_path):
    """A running server of two pages (one thread; two threads, isolated) over stand-in files."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in FILES:
        (runtime / name).write_bytes(name.encode())
    (runtime / "manifest.json").write_text("{}")
    (tmp_path / "secret.txt").write_text("private")
    pages = [PageConfig(), PageConfig(threads=2)]
    with PageServer(pages, script="async function predict() {}", model=b"ONNX", runtime=runtime,
                    inputs=bytes(8 * 4), dtype="float32", item_shape=(4,), count=2,
                    files={"model.onnx.data": b"weights"}, max_result_bytes=4096) as running:
        yield running
    assert not running.running


def _request(server, path, *, method="GET", host=None, body=None, headers=None):
    """(status, headers, body) of one raw request; ``host`` None sends 127.0.0.1:PORT."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host if host is not None else f"127.0.0.1:{server.port}")
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None and "Content-Length" not in (headers or {}):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _result(server, **fields) -> dict:
    return {"token": server.token, "index": 0, "status": "error", **fields}


def _post(server, payload, **headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{server.port}",
               **headers}
    return _request(server, "/results", method="POST", body=body,
                    headers={k: v for k, v in headers.items() if v is not None})


def test_the_page_its_scripts_the_model_and_the_runtime_are_served_and_nothing_else(server):
    """Are the run's own paths served, and every other file (the manifest, a file beside the
    runtime, another bundle, a traversal) a 404?"""
    for path, expected in [("/model.onnx", b"ONNX"), ("/user.js", b"async function predict() {}"),
                           ("/inputs.bin", bytes(32)), ("/ort/ort.wasm.min.js", b"ort.wasm.min.js"),
                           ("/files/model.onnx.data", b"weights")]:
        assert _request(server, path)[::2] == (200, expected), path
    assert b"predict(session, item)" in _request(server, "/harness.js")[2]
    page = _request(server, "/run/0/")[2].decode()
    assert '<script src="/ort/ort.wasm.min.js">' in page and '<script src="/user.js">' in page
    assert json.loads(_request(server, "/run/1/config.json")[2])["threads"] == 2
    for path in ("/ort/manifest.json", "/ort/ort.all.min.js", "/ort/../secret.txt", "/secret.txt",
                 "/ort/%2e%2e/secret.txt", "/run/2/", "/run/0", "/files/other", "/model.onnx/",
                 "/run/-1/", "/" + "a" * 600, "*", "/files/../model.onnx"):
        assert 400 <= _request(server, path)[0] < 500, path
    status, headers, _ = _request(server, "/")
    assert status == 303 and headers["Location"] == "/run/0/"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1", "localhost",
                                  "127.0.0.1:1", "", "127.0.0.1:{port}.evil.example", "[::1]:{port}"])
def test_other_host_names_get_nothing(server, host):
    """Does a request naming another host (DNS rebinding) get a 403, for reading and posting?"""
    host = host.format(port=server.port)
    for path in ("/run/0/", "/model.onnx", "/run/0/config.json"):
        status, _, body = _request(server, path, host=host)
        assert status == 403 and b"ONNX" not in body and server.token.encode() not in body
    assert _request(server, "/model.onnx", host=f"LocalHost:{server.port}")[0] == 200
    status, _, _ = _request(server, "/results", method="POST", host=host,
                            body=json.dumps(_result(server)).encode(),
                            headers={"Content-Type": "application/json"})
    assert status == 403 and not server.results


def test_a_second_host_header_gets_nothing(server):
    """Is a request with two Host headers refused even when the first is this server's own?"""
    status, _, body = _request(server, "/model.onnx", headers={"Host": "evil.example"})
    assert status == 403 and b"ONNX" not in body


def test_every_response_carries_the_policy_and_only_isolated_pages_the_isolation(server):
    """Is the Content-Security-Policy on every answer (404s too), and are COOP, COEP and the
    Document-Isolation-Policy sent on the isolated page only?"""
    for path in ("/run/0/", "/run/1/", "/model.onnx", "/nothing", "/ort/ort-wasm-simd-threaded.mjs"):
        headers = _request(server, path)[1]
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
    assert "connect-src 'self'" in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
    plain, isolated = _request(server, "/run/0/")[1], _request(server, "/run/1/")[1]
    assert not {"Cross-Origin-Opener-Policy", "Cross-Origin-Embedder-Policy",
                "Document-Isolation-Policy"} & set(plain)
    assert (isolated["Cross-Origin-Opener-Policy"], isolated["Cross-Origin-Embedder-Policy"],
            isolated["Document-Isolation-Policy"]) == ("same-origin", "require-corp",
                                                       "isolate-and-require-corp")


def test_methods_other_than_get_head_and_the_result_post_are_refused(server):
    """Are PUT, DELETE, OPTIONS and any other method a 405 under the usual headers, after the Host
    check, a POST anywhere but /results a 405, and HEAD bodiless?"""
    for method in ("PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "PROPFIND", "BREW"):
        status, headers, _ = _request(server, "/model.onnx", method=method)
        assert status == 405 and headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert _request(server, "/model.onnx", method=method, host="evil.example")[0] == 403
    assert _request(server, "/model.onnx", method="POST", body=b"{}",
                    headers={"Content-Type": "application/json"})[0] == 405
    assert _request(server, "/model.onnx", method="HEAD")[::2] == (200, b"")


def test_a_valid_result_is_kept_once(server):
    """Is a well-formed result kept as data, and a second one for the same page refused?"""
    payload = _result(server, status="ok", outputs=[[1.5, -2.0, 3], [0.0, 1e-30, 7.25]], round_ms=[3.5],
                      load_ms=120.0, info={"user_agent": "X", "cross_origin_isolated": False},
                      console=["warn: something"])
    status, _, body = _post(server, payload)
    assert status == 200 and json.loads(body) == {"received": 0}
    kept = server.results[0]
    assert kept["outputs"] == [[1.5, -2.0, 3.0], [0.0, 1e-30, 7.25]] and kept["load_ms"] == 120.0
    assert _post(server, payload)[0] == 409 and server.results[0] == kept


@pytest.mark.parametrize("change, status", [
    ({"Content-Type": "text/plain"}, 415),                        # a cross-site form's type
    ({"Origin": "http://evil.example"}, 403),                     # another site's page
    ({"Content-Length": "99999999"}, 413),                        # refused before reading
    ({"Content-Length": "ten"}, 411),
])
def test_results_from_elsewhere_or_of_the_wrong_kind_are_refused(server, change, status):
    """Are a result of another type, from another origin, or over the size limit refused unread?"""
    body = json.dumps(_result(server)).encode()
    assert _post(server, body, **change)[0] == status and not server.results
