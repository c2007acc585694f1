"""The main job: does what `make lab` starts serve the exercises, on loopback only?"""
import json
import subprocess
import time
import urllib.request

import pytest

from conftest import stop_process_group


def _get(url, token):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_make_lab_serves_the_exercises(root, free_port):
    """Does `make lab` start JupyterLab on 127.0.0.1, list every exercises notebook, and skip the news?"""
    token = "course-test-token"
    process = subprocess.Popen(
        ["make", "-s", "lab", f"PORT={free_port}",
         f"LAB_ARGS=--no-browser --IdentityProvider.token={token} --ServerApp.port_retries=0"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)  # its own process group, so the whole tree is stopped below
    try:
        deadline, listing = time.monotonic() + 120, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                listing = _get(f"http://127.0.0.1:{free_port}/api/contents", token)
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer within 120 s"
        served = {item["name"] for item in listing["content"]}
        expected = {p.name for p in (root / "exercises").glob("*.ipynb")}
        assert expected and expected <= served
        status = _get(f"http://127.0.0.1:{free_port}/api/status", token)
        assert "started" in status
        # lab-settings/overrides.json: no news pop-up, nothing fetched from jupyter.org.
        notification = _get(f"http://127.0.0.1:{free_port}/lab/api/settings/"
                            "@jupyterlab/apputils-extension:notification", token)
        defaults = {k: v["default"] for k, v in notification["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False
        # Bound to loopback only: a connection to another local address is refused.
        addresses = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
        other = next((a for a in addresses if not a.startswith("127.") and ":" not in a), None)
        if other:
            with pytest.raises(OSError):
                urllib.request.urlopen(f"http://{other}:{free_port}/api/status", timeout=2)
    finally:
        stop_process_group(process)
