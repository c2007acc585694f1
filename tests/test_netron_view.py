"""Tests for course_utils/netron_view.py: the Netron launcher, its display helper and CLI.

Every test ends with no Netron server running (the autouse fixture checks it).
"""
import datetime
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from course_utils.netron_view import serve_netron, show_netron, stop_all_netron

FIXTURE = Path(__file__).parent / "files" / "small-cnn.onnx"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_server_left_running():
    yield
    leftover = stop_all_netron()
    assert not leftover, "a test left a Netron server running"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_serves_the_page_and_the_model_bytes():
    """Does the server answer / with Netron's page naming the model, and serve the model's bytes?"""
    with serve_netron(FIXTURE) as server:
        page = _get(server.url).decode()
        assert "<title>Netron</title>" in page
        assert '<meta name="file" content="/data/small-cnn.onnx">' in page
        assert _get(server.model_url) == FIXTURE.read_bytes()


def test_two_servers_serve_their_own_models(tmp_path):
    """Side by side, does each server name and serve its own model (not the last one started)?"""
    other = tmp_path / "other-model.onnx"
    other.write_bytes(b"not the same bytes")
    with serve_netron(FIXTURE) as first, serve_netron(other) as second:
        assert '<meta name="file" content="/data/small-cnn.onnx">' in _get(first.url).decode()
        assert '<meta name="file" content="/data/other-model.onnx">' in _get(second.url).decode()
        assert _get(first.model_url) == FIXTURE.read_bytes()
        assert _get(second.model_url) == other.read_bytes()


def test_the_page_cannot_reach_beyond_this_server():
    """Does every response carry a policy that lets the page connect to this server only?"""
    with serve_netron(FIXTURE) as server:
        for url in (server.url, server.url + "browser.js", server.model_url):
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.headers["Content-Security-Policy"].startswith("connect-src 'self'")


def test_the_cookie_question_and_reporting_are_switched_off(caplog):
    """Does the served browser.js skip Netron's cookie question and its usage reporting?"""
    with caplog.at_level(logging.WARNING, logger="course_utils.netron_page"):
        with serve_netron(FIXTURE) as server:
            script = _get(server.url + "browser.js").decode()
    assert "could not switch off" not in caplog.text
    assert "if (true) { // onnx-course: no cookie question" in script
    assert re.search(r"const telemetry = async \(\) => \{\s*if \(false\)", script)
    assert "ipinfo.io" in script  # the rest of Netron's code is served as it is


def test_files_outside_the_model_folder_are_not_served(tmp_path):
    """Is a request for ../something under /data/ refused, so only the model's folder is readable?"""
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "m.onnx"
    model.write_bytes(FIXTURE.read_bytes())
    (tmp_path / "secret.txt").write_text("private")
    with serve_netron(model) as server:
        for path in ("data/../secret.txt", "data/%2e%2e/secret.txt", "../../secret.txt"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                _get(server.url + path)


def test_binds_to_loopback_only():
    """Is the listening socket bound to 127.0.0.1, not to every interface?"""
    with serve_netron(FIXTURE) as server:
        listening = [c for c in psutil.Process().net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == server.port]
        assert [c.laddr.ip for c in listening] == ["127.0.0.1"]
        assert server.url.startswith("http://127.0.0.1:")


def test_a_taken_port_is_replaced_by_a_free_one(free_port, caplog):
    """When the asked-for port is busy, does it serve on another one and say so?"""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", free_port))
        squatter.listen()
        with caplog.at_level(logging.WARNING, logger="course_utils.netron_view"):
            with serve_netron(FIXTURE, port=free_port) as server:
                assert server.port != free_port and server.running
                assert _get(server.model_url) == FIXTURE.read_bytes()
        assert f"port {free_port} is already in use" in caplog.text


def test_a_free_port_is_used_as_asked(free_port):
    """Is an explicitly requested free port used?"""
    with serve_netron(FIXTURE, port=free_port) as server:
        assert server.port == free_port and _listening(free_port)


def test_stop_frees_the_port_and_can_be_repeated():
    """After stop(), is nothing listening any more, and is a second stop() harmless?"""
    server = serve_netron(FIXTURE)
    assert server.running and _listening(server.port)
    server.stop()
    assert not server.running and not _listening(server.port)
    server.stop()
    assert "stopped" in repr(server)


def test_the_with_block_stops_the_server_after_an_error():
    """Does leaving a with block through an exception still stop the server?"""
    with pytest.raises(ZeroDivisionError):
        with serve_netron(FIXTURE) as server:
            1 / 0
    assert not server.running


def test_stop_all_stops_every_server():
    """Does stop_all_netron() (also run at exit) stop all servers and count them?"""
    servers = [serve_netron(FIXTURE), serve_netron(FIXTURE)]
    assert len({s.port for s in servers}) == 2
    assert stop_all_netron() == 2
    assert not any(s.running for s in servers)
    assert stop_all_netron() == 0


def test_the_host_logging_is_left_alone():
    """Does serving leave the root logger without handlers when the host configured none?"""
    root = logging.getLogger()
    before = list(root.handlers)
    with serve_netron(FIXTURE):
        pass
    assert root.handlers == before


def test_a_missing_model_is_named():
    """Is a missing file refused before any server starts, with its name and the next step?"""
    with pytest.raises(FileNotFoundError, match="nothing.onnx.*export"):
        serve_netron("artifacts/nothing.onnx")


def test_an_impossible_port_is_refused():
    """Is port 70000 refused with the valid range?"""
    with pytest.raises(ValueError, match="1 and 65535"):
        serve_netron(FIXTURE, port=70000)


def test_show_netron_puts_models_side_by_side():
    """Does show_netron give IFrames of half the width for two models, and URLs as text?"""
    frames = show_netron(FIXTURE, FIXTURE, height=321)
    try:
        html = frames._repr_html_()
        for server in frames.servers:
            assert f'<iframe src="{server.url}"' in html
            assert f"Netron: small-cnn.onnx at {server.url}" in repr(frames)
        assert html.count("width:50%") == 2 and "height:321px" in html
        assert "ssh -L" in html  # what to do when the browser cannot reach the kernel
        for server in frames.servers:  # one forward per frame, every port named
            assert f"-L {server.port}:127.0.0.1:{server.port}" in html
    finally:
        stop_all_netron()


def test_an_expired_netron_ui_is_explained(monkeypatch):
    """Past 180 days after Netron's build, does the display say how to get a working viewer?"""
    from course_utils import install

    monkeypatch.setattr(install, "netron_build_date",
                        lambda: datetime.date.today() - datetime.timedelta(days=200))
    with serve_netron(FIXTURE) as server:
        text = repr(show_netron(server))
        assert "200 days ago" in text and "pip install --upgrade netron" in text


def test_jupyterhub_is_told_to_use_the_picture(monkeypatch):
    """On JupyterHub, where the browser cannot reach the kernel's 127.0.0.1, is that said?"""
    monkeypatch.setenv("JUPYTERHUB_USER", "student")
    with serve_netron(FIXTURE) as server:
        frames = show_netron(server)
        assert "JupyterHub" in repr(frames) and "draw_graph" in frames._repr_html_()


def test_show_netron_needs_a_model():
    """Is show_netron() without models a TypeError that says what it needs?"""
    with pytest.raises(TypeError, match="at least one"):
        show_netron()


def _cli(*args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "course_utils", "netron", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_cli_serves_until_interrupted(free_port):
    """Does `python -m course_utils netron MODEL --port P` serve on P until Ctrl+C, then exit 0?"""
    process = _cli(str(FIXTURE), "--port", str(free_port))
    try:
        line = process.stdout.readline()
        assert f"Netron is serving small-cnn.onnx at http://127.0.0.1:{free_port}/" in line
        assert _get(f"http://127.0.0.1:{free_port}/data/small-cnn.onnx") == FIXTURE.read_bytes()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not _listening(free_port)


def test_cli_names_a_missing_model():
    """Does the CLI turn a missing model into one error line and exit status 1?"""
    process = _cli("artifacts/nothing.onnx")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err.strip().startswith("error: no model file at artifacts/nothing.onnx")
    assert "Traceback" not in err


def test_servers_are_stopped_when_the_kernel_exits():
    """Does a Python process (a notebook kernel) stop its Netron servers on its way out?"""
    # atexit runs handlers last-registered-first: the probe, registered before
    # serve_netron registers its own handler, sees the state after ours ran.
    script = ("import atexit\n"
              "servers = []\n"
              "atexit.register(lambda: print('running at exit:', servers[0].running))\n"
              "from course_utils.netron_view import serve_netron\n"
              f"servers.append(serve_netron({str(FIXTURE)!r}))\n"
              "print('running:', servers[0].running)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.split("\n")[:2] == ["running: True", "running at exit: False"]
