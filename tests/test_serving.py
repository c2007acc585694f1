"""Tests for course_utils/serving.py: real HTTP requests to a server on 127.0.0.1."""
import io
import threading

import httpx
import numpy as np
import pytest

from course_utils import serving
from course_utils.serving import ModelEndpoint, make_app, serve_app


def _linear_onnx(path):
    """A (batch, 2, 3) float32 -> (batch, 4) model: flatten, then a fixed MatMul."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.arange(24, dtype=np.float32).reshape(6, 4) / 10
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    return _linear_onnx(tmp_path_factory.mktemp("serving") / "linear.onnx")


def _session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _endpoints(onnx_path, loads):
    def loader(kind):
        def load():
            loads[kind] += 1
            session = _session(onnx_path)
            return lambda batch: session.run(None, {"x": batch})[0]
        return load

    return [
        ModelEndpoint("linear-json", loader("json"), shape=(2, 3), json_key="pixels",
                      max_batch=4, value_range=(0.0, 1.0), backend="onnxruntime"),
        ModelEndpoint("linear-npy", loader("npy"), shape=(2, 3), input_format="npy",
                      max_batch=4, backend="onnxruntime"),
    ]


@pytest.fixture(scope="module")
def served(onnx_path):
    """One server for the module's request tests; stopped however the tests end."""
    loads = {"json": 0, "npy": 0}
    with serve_app(make_app(_endpoints(onnx_path, loads))) as server:
        yield server, loads


@pytest.fixture(autouse=True)
def no_server_left_behind():
    """Fail any test that leaves a server (or its thread) running."""
    servers, threads = set(serving._RUNNING), set(threading.enumerate())
    yield
    assert serving._RUNNING <= servers, "a test left a server running"
    new_threads = [t.name for t in set(threading.enumerate()) - threads
                   if t.name.startswith("uvicorn-")]
    assert not new_threads, f"server threads left running: {new_threads}"


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _post(server, name, **request):
    return httpx.post(f"{server.url}/models/{name}/predict", timeout=10, **request)


def test_health_describes_models_loaded_once(served):
    """Does /health name each model's shape and dtype, with every model loaded exactly once?"""
    server, loads = served
    for _ in range(3):
        _post(server, "linear-json", json={"pixels": [[[0.1] * 3] * 2]})
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok"
    assert health["models"]["linear-json"] == {
        "backend": "onnxruntime", "format": "json", "shape": ["batch", 2, 3],
        "dtype": "float32", "loads": 1}
    assert health["models"]["linear-npy"]["format"] == "npy"
    assert loads == {"json": 1, "npy": 1}


def test_json_prediction_equals_local_session(served, onnx_path):
    """Are labels and scores over HTTP bit-identical to running the session locally?"""
    server, _ = served
    batch = np.random.default_rng(0).random((3, 2, 3), dtype=np.float32)
    response = _post(server, "linear-json", json={"pixels": batch.tolist()})
    assert response.status_code == 200
    reply = response.json()
    local = _session(onnx_path).run(None, {"x": batch})[0]
    assert reply["model"] == "linear-json"
    assert reply["labels"] == local.argmax(axis=1).tolist()
    assert np.array_equal(np.array(reply["scores"], dtype=np.float32), local)


def test_npy_prediction_equals_local_session(served, onnx_path):
    """Does the raw-tensor endpoint take numpy.save bytes and answer like the local session?"""
    server, _ = served
    batch = np.random.default_rng(1).normal(size=(4, 2, 3)).astype(np.float32)
    response = _post(server, "linear-npy", content=_npy(batch),
                     headers={"content-type": "application/octet-stream"})
    assert response.status_code == 200
    local = _session(onnx_path).run(None, {"x": batch})[0]
    assert np.array_equal(np.array(response.json()["scores"], dtype=np.float32), local)


ONE = [[0.5] * 3] * 2  # one valid (2, 3) item
JSON = {"content-type": "application/json"}
JSON_EXPECTED = "float32 array of shape (batch, 2, 3)"


@pytest.mark.parametrize("body, status, fragment", [
    ({"pixels": ONE}, 422, "got shape (2, 3) (for one item, wrap it in a list"),
    ({"pixels": [[0.5] * 6]}, 422, "got shape (1, 6)"),
    ({"image": [ONE]}, 422, "got keys ['image']"),
    ([ONE], 422, "got a JSON list"),
    ({"pixels": [[[0.5] * 3, [0.5] * 2]]}, 422, "ragged"),
    ({"pixels": [[["a"] * 3] * 2]}, 422, "holds strings"),
    ({"pixels": [ONE] * 5}, 422, "1 to 4 items, got 5"),
    ({"pixels": []}, 422, "got shape (0,)"),
    ({"pixels": [[[2.0] * 3] * 2]}, 422, "values must lie in [0, 1]"),
])
def test_bad_json_is_refused_with_expected_shape(served, body, status, fragment):
    """Is each malformed JSON body refused with a 4xx that says what was expected?"""
    server, _ = served
    response = _post(server, "linear-json", json=body)
    assert response.status_code == status
    detail = response.json()["detail"]
    assert fragment in detail
    assert JSON_EXPECTED in detail


def test_unparsable_json_is_a_400(served):
    """Is a body that is not JSON at all a 400 naming the expected format?"""
    server, _ = served
    response = _post(server, "linear-json", content=b"pixels=1,2,3", headers=JSON)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    assert JSON_EXPECTED in response.json()["detail"]


def test_nan_is_refused(served):
    """Are NaN values (Python's JSON accepts them) refused?"""
    server, _ = served
    response = _post(server, "linear-json", content=b'{"pixels": [[[NaN, 0, 0], [0, 0, 0]]]}',
                     headers=JSON)
    assert response.status_code == 422
    assert "NaN" in response.json()["detail"]
    assert JSON_EXPECTED in response.json()["detail"]


@pytest.mark.parametrize("array, headers, status, fragment", [
    (np.ones((1, 2, 3)), {"content-type": "application/octet-stream"}, 422,
     "expected dtype float32, got float64"),
    (np.ones((2, 3), np.float32), {"content-type": "application/octet-stream"}, 422,
     "got shape (2, 3)"),
    (np.ones((1, 2, 3), np.float32), {"content-type": "application/json"}, 415,
     "got Content-Type 'application/json'"),
    (None, {"content-type": "application/octet-stream"}, 400, "not a .npy array"),
])
def test_bad_npy_is_refused_with_expected_shape(served, array, headers, status, fragment):
    """Is each wrong raw-tensor body refused with a 4xx that names shape and dtype?"""
    server, _ = served
    content = b"\x93NUMPY garbage" if array is None else _npy(array)
    response = _post(server, "linear-npy", content=content, headers=headers)
    assert response.status_code == status
    assert fragment in response.json()["detail"]
    assert "float32 array of shape (batch, 2, 3)" in response.json()["detail"]


def test_oversized_body_is_refused_unread(served):
    """Is a body far larger than any valid request refused with 413?"""
    server, _ = served
    big = _npy(np.zeros((5000, 2, 3), np.float32))  # 120 kB; a valid body is under 5 kB
    response = _post(server, "linear-npy", content=big,
                     headers={"content-type": "application/octet-stream"})
    assert response.status_code == 413


def test_unknown_model_is_a_404_listing_models(served):
    """Does a misspelt model name get a 404 that lists the available ones?"""
    server, _ = served
    response = _post(server, "linear", json={"pixels": [ONE]})
    assert response.status_code == 404
    assert "available: linear-json, linear-npy" in response.json()["detail"]


def test_failing_model_is_a_500_with_the_reason():
    """Does an exception inside the model become a 500 that names the model and the error?"""
    def broken(batch):
        raise RuntimeError("kernel exploded")

    endpoint = ModelEndpoint("broken", load=lambda: broken, shape=(1,))
    with serve_app(make_app([endpoint])) as server:
        response = _post(server, "broken", json={"inputs": [[1.0]]})
    assert response.status_code == 500
    assert "model 'broken' failed on a valid input: RuntimeError: kernel exploded" in \
        response.json()["detail"]


def test_listens_on_loopback_only_and_stops(onnx_path):
    """Does the server listen on 127.0.0.1 only, and is its port closed after the with block?"""
    import psutil

    with serve_app(make_app(_endpoints(onnx_path, {"json": 0, "npy": 0}))) as server:
        listening = [c.laddr for c in psutil.Process().net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == server.port]
        assert [address.ip for address in listening] == ["127.0.0.1"]
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{server.url}/health").status_code == 200
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=2)
    server.stop()  # a second stop is harmless


def test_server_is_stopped_when_the_block_fails(onnx_path):
    """Is the server stopped even when the code inside the with block raises?"""
    with pytest.raises(ZeroDivisionError):
        with serve_app(make_app(_endpoints(onnx_path, {"json": 0, "npy": 0}))) as server:
            1 / 0
    assert not server.running


def test_atexit_hook_stops_forgotten_servers(onnx_path):
    """Does the atexit hook stop a server that was started without a with block?"""
    server = serve_app(make_app(_endpoints(onnx_path, {"json": 0, "npy": 0})))
    assert server.running and server in serving._RUNNING
    serving._stop_all()
    assert not server.running and server not in serving._RUNNING


def test_failing_loader_names_the_endpoint_and_cleans_up():
    """Does a loader that raises make serve_app fail with the endpoint's name, leaving nothing running?"""
    def load():
        raise FileNotFoundError("artifacts/missing.onnx")

    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="loading 'digits' failed: FileNotFoundError: "
                                           "artifacts/missing.onnx"):
        serve_app(make_app([ModelEndpoint("digits", load=load, shape=(8, 8))]))
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("uvicorn-")]


@pytest.mark.parametrize("endpoints, message", [
    ([ModelEndpoint("a", load=dict, shape=(1,)), ModelEndpoint("a", load=dict, shape=(1,))],
     "unique"),
    ([ModelEndpoint("a", load=dict, shape=(1,), input_format="csv")], "'json' or 'npy'"),
])
def test_make_app_refuses_bad_endpoints(endpoints, message):
    """Are duplicate names and unknown input formats refused before anything starts?"""
    with pytest.raises(ValueError, match=message):
        make_app(endpoints)
