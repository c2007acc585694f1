"""Tests for course_utils/netron_page.py: what a Netron server hands out, to whom.

Hostile requests, as a web page in the same browser (DNS rebinding) or a
careless script would send them: only the page's own files, the model and its
external-data files come back, only to ``127.0.0.1:PORT`` or ``localhost:PORT``,
and every odd path is a 4xx with nothing worse than a debug line in the log.
"""
import http.client
import logging
import os
import socket
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from course_utils.netron_view import serve_netron, stop_all_netron

FIXTURE = Path(__file__).parent / "files" / "small-cnn.onnx"


@pytest.fixture(autouse=True)
def no_server_left_running():
    yield
    assert not stop_all_netron(), "a test left a Netron server running"


def _request(port: int, path: str, host: str | None = None, method: str = "GET"):
    """(status, body) of one raw request; ``host`` None sends 127.0.0.1:PORT."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def model_folder(tmp_path):
    """A model with its weights in a separate file, beside secrets and odd entries."""
    import numpy as np

    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4])],
                              initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder = tmp_path / "models"
    folder.mkdir()
    onnx.save(model, folder / "m.onnx", save_as_external_data=True, location="m.onnx.data",
              size_threshold=0)
    (folder / "secret.txt").write_text("private")
    (folder / "sub").mkdir()
    (folder / "sub" / "id_rsa").write_text("key")
    (folder / "loop").symlink_to(folder / "loop")
    (folder / "up").symlink_to(tmp_path)
    (tmp_path / "outside.txt").write_text("outside")
    return folder


def test_only_the_model_and_its_external_data_are_served(model_folder):
    """Are the model and its weights file served, and nothing else from the model's folder?"""
    with serve_netron(model_folder / "m.onnx") as server:
        port = server.port
        assert _request(port, "/data/m.onnx") == (200, (model_folder / "m.onnx").read_bytes())
        assert _request(port, "/data/m.onnx.data")[1] == (model_folder / "m.onnx.data").read_bytes()
        for path in ("/data/secret.txt", "/data/sub/id_rsa", "/data/sub/", "/data/",
                     "/data/up/outside.txt", "/data/loop", "/data/loop/x", "/secret.txt",
                     "/__init__.py", "/server.py", "/__pycache__/server.cpython-311.pyc"):
            assert _request(port, path)[0] == 404, path


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1",
                                  "127.0.0.1:1", "localhost", "", "127.0.0.1:{port}.evil.example",
                                  "[::1]:{port}", "0.0.0.0:{port}"])
def test_other_host_names_get_nothing(host):
    """Does a request naming any other host (DNS rebinding) get a 403 for the page and the model?"""
    with serve_netron(FIXTURE) as server:
        for path in ("/", "/data/small-cnn.onnx", "/browser.js"):
            status, body = _request(server.port, path, host=host.format(port=server.port))
            assert status == 403 and b"small-cnn" not in body and b"Netron" not in body


def test_localhost_is_answered_too():
    """Is Host: localhost:PORT (what a browser sends for http://localhost:PORT) served?"""
    with serve_netron(FIXTURE) as server:
        assert _request(server.port, "/data/small-cnn.onnx",
                        host=f"LocalHost:{server.port}")[0] == 200
        assert _request(server.port, "/", method="HEAD") == (200, b"")


ODD_PATHS = [
    "/data/m.onnx%00", "/data/%00", "/%00.js", "/data/" + "a" * 5000, "/" + "b" * 300 + ".js",
    "/data/../secret.txt", "/data/%2e%2e/secret.txt", "/data/..%2fsecret.txt",
    "/data/%2e%2e%2f%2e%2e%2foutside.txt", "/..%5c..%5csecret.txt", "/data//etc/passwd",
    "/data/%2Fetc%2Fpasswd", "/data/loop/loop/loop", "/data/sub/../../outside.txt",
    "/data/%ff%fe.onnx", "/data/m.onnx/", "/index.html/..", "/%2e%2e/",
    "http://evil.example/data/m.onnx", "*", "data/m.onnx", "/" + "%2e%2e/" * 400,
]


@pytest.mark.parametrize("path", ODD_PATHS)
def test_odd_paths_are_a_4xx_without_a_traceback(model_folder, path, caplog, capfd):
    """Is every odd path (NUL, very long, traversal, encoded, loops) a 4xx, with no traceback?"""
    with caplog.at_level(logging.DEBUG, logger="course_utils.netron_page"):
        with serve_netron(model_folder / "m.onnx") as server:
            status, body = _request(server.port, path)
            assert _request(server.port, "/data/m.onnx")[0] == 200  # still serving
    assert 400 <= status < 500 and b"private" not in body and b"outside" not in body
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_client_that_hangs_up_leaves_no_traceback(capfd):
    """Does a client that sends half a request and leaves cost nothing but a debug line?"""
    with serve_netron(FIXTURE) as server:
        for partial in (b"GET /data/small-cnn.onnx HTTP/1.1\r\nHost: 127.0.0.1", b"\x00" * 100,
                        b"GET " + b"/a" * 40000 + b" HTTP/1.1\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
                client.sendall(partial)
        assert _request(server.port, "/data/small-cnn.onnx")[0] == 200
    assert "Traceback" not in capfd.readouterr().err


def test_external_data_outside_the_folder_is_not_served(tmp_path, caplog):
    """Is an external-data location that escapes the model's folder refused, with a warning?"""
    import numpy as np

    (tmp_path / "models").mkdir()
    (tmp_path / "stolen.bin").write_bytes(np.zeros(12, np.float32).tobytes())
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 4])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../stolen.bin"), ("offset", "0"), ("length", "48")):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4])],
                              initializer=[weight])
    model = tmp_path / "models" / "escape.onnx"
    model.write_bytes(helper.make_model(graph).SerializeToString())
    with caplog.at_level(logging.WARNING, logger="course_utils.netron_page"):
        with serve_netron(model) as server:
            assert _request(server.port, "/data/../stolen.bin")[0] == 404
            assert _request(server.port, "/data/escape.onnx")[0] == 200
    assert "not a file inside" in caplog.text


def test_a_file_that_is_not_onnx_is_served_alone(tmp_path):
    """Is a model Netron reads but onnx does not (e.g. a .tflite) still served, and only it?"""
    model = tmp_path / "model.tflite"
    model.write_bytes(os.urandom(64))
    (tmp_path / "other.bin").write_bytes(b"x")
    with serve_netron(model) as server:
        assert _request(server.port, "/data/model.tflite")[1] == model.read_bytes()
        assert _request(server.port, "/data/other.bin")[0] == 404


def _answer(port: int, method: str, host: str):
    """(status, headers, body) of one request with a small body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, "/data/small-cnn.onnx", body=b"x=1", headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE",
                                    "PROPFIND", "BREW"])
def test_other_methods_are_a_405_under_the_usual_headers(method):
    """Is every method but GET and HEAD a 405 with Allow and the usual CSP, after the Host check?"""
    with serve_netron(FIXTURE) as server:
        status, headers, body = _answer(server.port, method, f"127.0.0.1:{server.port}")
        assert status == 405 and headers["Allow"] == "GET, HEAD"
        assert headers["Content-Security-Policy"].startswith("connect-src 'self'")
        assert headers["Cache-Control"] == "no-store" and b"small-cnn" not in body
        status, headers, body = _answer(server.port, method, "evil.example")
        assert status == 403 and "Allow" not in headers and b"small-cnn" not in body
        assert _request(server.port, "/data/small-cnn.onnx")[0] == 200  # still serving


def test_a_port_that_needs_root_is_one_clear_error(monkeypatch):
    """Is a port the OS refuses (below 1024 without root) a NetronError saying what to do?"""
    import errno

    from course_utils import netron_view

    def refuse(port, model):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(netron_view, "ModelServer", refuse)
    monkeypatch.setattr(netron_view, "_port_is_free", lambda port: True)
    with pytest.raises(netron_view.NetronError, match="port 80 needs administrator rights"):
        serve_netron(FIXTURE, port=80)
