"""A real browser opens the page serve_netron serves, and the graph renders.

Headless Chromium (Debian's ``chromium`` package) is driven by the ``playwright``
Python package through ``executable_path``: playwright never downloads a browser
here. The browser is kept offline (every request that is not to 127.0.0.1 is
aborted), so Netron always behaves as it does on a machine without internet: it
shows its cookie dialog, which the test accepts like a student would.

In CI (``CI=true``) this test must run; elsewhere it skips when Chromium is
missing. Set ``NETRON_SCREENSHOT=path.png`` to keep the screenshot somewhere you
can look at it (``tests/files/netron-small-cnn.png`` is one that was reviewed).
"""
import os
import shutil
from pathlib import Path

import onnx
import pytest

from course_utils.netron_view import serve_netron

FIXTURE = Path(__file__).parent / "files" / "small-cnn.onnx"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000  # generous: CI machines are shared


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        message = ("Chromium is not installed; install it to run the Netron browser test: "
                   "sudo apt-get install chromium (Debian/Ubuntu; .ci/run does this in CI)")
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


def _sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        message = "the playwright package is missing: pip install -e '.[dev]'"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


def _offline(route):
    if route.request.url.startswith("http://127.0.0.1:"):
        route.continue_()
    else:
        route.abort()  # ipinfo.io, Google Analytics: the browser stays offline


def test_netron_renders_the_graph_in_headless_chromium(tmp_path):
    """Does Netron's page, after its cookie dialog, draw every node of the model as SVG?"""
    executable = _chromium()
    sync_playwright = _sync_playwright()
    node_count = len(onnx.load(str(FIXTURE)).graph.node)  # 8
    screenshot = Path(os.environ.get("NETRON_SCREENSHOT") or tmp_path / "netron-small-cnn.png")
    with serve_netron(FIXTURE) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            page.route("**/*", _offline)
            page.goto(server.url, timeout=TIMEOUT_MS)
            # Offline, Netron waits for "This app uses cookies ..." to be accepted.
            dialog = page.locator("#message-button")
            dialog.wait_for(state="visible", timeout=TIMEOUT_MS)
            assert "cookies" in page.locator("#message-text").inner_text()
            dialog.click()
            nodes = page.locator("svg g.graph-node")
            nodes.nth(node_count - 1).wait_for(timeout=TIMEOUT_MS)
            rendered = nodes.count()
            # Netron replaces window.eval, which playwright's *_all_* helpers use: read one by one.
            types = page.locator("svg g.graph-node .node-item-type > text")
            labels = [types.nth(i).text_content() for i in range(types.count())]
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    assert rendered >= node_count
    assert {"Conv", "Relu", "MaxPool", "Flatten", "MatMul", "Add"} <= set(labels)
    assert screenshot.stat().st_size > 10_000  # a drawn graph, not a blank page
