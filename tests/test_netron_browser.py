"""A real browser opens the pages serve_netron serves: the graph renders, side by side too.

Headless Chromium (Debian's ``chromium`` package) is driven by playwright (see
``browser_support``): every request that is not to 127.0.0.1 is aborted and
counted, so the tests see Netron as it is on a machine without internet and can
check that the course's Netron pages ask for nothing outside this machine (no
usage reporting, no IP lookup) and show no cookie question.

In CI (``CI=true``) these tests must run; elsewhere they skip when Chromium is
missing. Set ``BROWSER_SCREENSHOTS=1`` to keep screenshots in artifacts/browser/
(``tests/files/netron-small-cnn.png`` is one that was reviewed).
"""
import time
from pathlib import Path

import onnx

from browser_support import keep_screenshot, offline_browser, screenshot_on_failure
from course_utils.graph_opt import save_optimized_model
from course_utils.netron_view import serve_netron, show_netron, stop_all_netron

FIXTURE = Path(__file__).parent / "files" / "small-cnn.onnx"
TIMEOUT_MS = 60_000  # generous: CI machines are shared


def _drawn(frame, count: int) -> tuple[int, list[str]]:
    """How many nodes Netron drew, once ``count`` are on screen, and the op types they show.

    A ``FusedConv`` box also shows its fused activation (a ``Relu`` band), so
    there can be more types than nodes.
    """
    nodes = frame.locator("svg g.graph-node")
    nodes.nth(count - 1).wait_for(timeout=TIMEOUT_MS)
    # Netron replaces window.eval, which playwright's *_all_* helpers use: read one by one.
    types = frame.locator("svg g.graph-node .node-item-type > text")
    return nodes.count(), [types.nth(i).text_content() for i in range(types.count())]


def _console_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if "Content Security Policy" in message.text else None)
    return errors


def test_netron_renders_the_graph_in_headless_chromium():
    """Does Netron's page draw every node of the model, with no cookie question and nothing sent out?"""
    node_count = len(onnx.load(str(FIXTURE)).graph.node)  # 8
    with serve_netron(FIXTURE) as server, offline_browser() as browser:
        page = browser.new_page(width=900, height=900)
        refused = _console_errors(page)
        with screenshot_on_failure(page, "netron-small-cnn"):
            page.goto(server.url, timeout=TIMEOUT_MS)
            rendered, labels = _drawn(page, node_count)
            assert not page.locator("#message-button").is_visible()  # no "This app uses cookies"
            keep_screenshot(page, "netron-small-cnn")
    assert rendered == node_count
    assert {"Conv", "Relu", "MaxPool", "Flatten", "MatMul", "Add"} <= set(labels)
    # Nothing reached the network, and the page did not even try (no request refused by the policy).
    assert browser.blocked == [] and refused == []


def test_side_by_side_frames_show_their_own_models(tmp_path):
    """As notebook 03 does it, do the two frames show the original (Conv, Relu) and the FusedConv graph?"""
    started = time.monotonic()
    original = tmp_path / "small-cnn.onnx"
    original.write_bytes(FIXTURE.read_bytes())
    extended = save_optimized_model(original, "extended")
    counts = [len(onnx.load(str(p)).graph.node) for p in (original, extended)]
    assert counts[0] > counts[1]  # Conv+Relu pairs became FusedConv
    server = serve_netron(original)  # notebook 03: the first frame's server, then
    frames = show_netron(server, extended, height=500)  # a second one for the extended graph
    try:
        with offline_browser() as browser:
            page = browser.new_page(width=1400, height=800)
            refused = _console_errors(page)
            with screenshot_on_failure(page, "netron-side-by-side"):
                page.set_content(frames._repr_html_())
                left, right = (page.frame_locator("iframe").nth(i) for i in range(2))
                (left_nodes, left_types), (right_nodes, right_types) = (
                    _drawn(left, counts[0]), _drawn(right, counts[1]))
                keep_screenshot(page, "netron-side-by-side")
    finally:
        stop_all_netron()
    assert (left_nodes, right_nodes) == tuple(counts)  # 8 and 5 nodes: two graphs, not one twice
    assert {"Conv", "Relu"} <= set(left_types) and "FusedConv" not in left_types
    assert "FusedConv" in right_types and "Conv" not in right_types
    assert browser.blocked == [] and refused == []
    print(f"side-by-side Netron in the browser: {time.monotonic() - started:.1f} s")
