"""Tests for course_utils/browser_results.py: what a page may post back, and how it is read.

Bodies as a buggy or hostile page would post them: every one that is not the
harness's result is refused with its HTTP status and the field named.
"""
import json

import numpy as np
import pytest

from course_utils.browser_results import BadResult, BrowserResults, BrowserRun, PageConfig, parse_result

BAD_RESULTS = [
    (b"\xff\xfe", 400, "UTF-8"),
    (b"{not json", 400, "not JSON"),
    (b"[1, 2]", 422, "JSON object"),
    (b"[" * 50 + b"]" * 50, 422, "deeper"),
    ('{"token": "T", "index": 0, "status": "ok", "outputs": [[NaN]]}', 422, "NaN"),
    ('{"token": "T", "index": 0, "status": "ok", "outputs": [[1e999]]}', 422, "numbers only"),
    ('{"token": "T", "index": 0, "status": "ok", "outputs": [[1, 2], [3]]}', 422, "outputs\\[1\\]"),
    ('{"token": "T", "index": 0, "status": "ok", "outputs": [["1"]]}', 422, "numbers only"),
    ('{"token": "T", "index": 0, "status": "ok", "outputs": [[1], [2], [3]]}', 422, "at most 2 rows"),
    ('{"token": "T", "index": 0, "status": "ok", "outputs": [[1, 2, 3, 4, 5, 6]]}', 422, "at most 5"),
    ('{"token": "T", "index": 0, "status": "ok", "outputs": [[1]]}', 422, "one output row per input"),
    ('{"token": "T", "index": 0, "status": "ok"}', 422, "one output row per input"),
    ('{"token": "T", "index": 0, "status": "error", "load_ms": "fast"}', 422, "load_ms"),
    ('{"token": "T", "index": 0, "status": "error", "info": {"a": [1]}}', 422, "info"),
    ('{"token": "T", "index": 0, "status": "error", "console": ["a", 1]}', 422, "console"),
    ('{"token": "T", "index": 0, "status": "error", "extra": 1}', 422, "unknown fields"),
    ('{"token": "T", "index": 2, "status": "error"}', 422, "index"),
    ('{"token": "T", "index": 0.5, "status": "error"}', 422, "index"),
    ('{"token": "T", "index": 0, "status": "fine"}', 422, "status"),
    ('{"token": "other", "index": 0, "status": "ok"}', 403, "another run"),
    ('{"index": 0, "status": "ok"}', 403, "another run"),
]


@pytest.mark.parametrize("body, status, message", BAD_RESULTS)
def test_a_malformed_result_is_refused_with_what_is_wrong(body, status, message):
    """Is every malformed result (not JSON, too deep, non-finite, ragged, too long, wrong types,
    unknown fields, another run's token) refused with its status and the field named?"""
    body = body if isinstance(body, bytes) else body.encode()
    with pytest.raises(BadResult, match=message) as refused:
        parse_result(body, token="T", pages=2, max_items=2, max_values=5)
    assert refused.value.status == status


def test_long_strings_in_a_result_are_cut():
    """Are the error, console lines and info strings a page sends kept to a bounded length?"""
    body = json.dumps({"token": "T", "index": 0, "status": "error", "error": "e" * 10_000,
                       "console": ["c" * 10_000], "info": {"k" * 500: "v" * 10_000}}).encode()
    result = parse_result(body, token="T", pages=1, max_items=1, max_values=1)
    assert len(result["error"]) == len(result["console"][0]) == 2000
    (key, value), = result["info"].items()
    assert len(key) == 80 and len(value) == 2000


def test_a_page_config_refuses_what_onnxruntime_web_has_not():
    """Is an unknown provider or a thread count outside 1..64 refused with the choices?"""
    with pytest.raises(ValueError, match="provider must be one of"):
        PageConfig("cuda")
    with pytest.raises(ValueError, match="threads must be an int from 1 to 64"):
        PageConfig(threads=0)
    assert PageConfig(threads=4).describe() == "wasm, 4 threads, isolated"
    assert PageConfig(threads=4, isolated=False).cross_origin_isolated is False


def test_a_posted_result_reads_as_float32_rows_and_a_table():
    """Does a posted result become float32 outputs, a per-item time from the median pass, and a
    table row; and a page that never posted an error row with the reason?"""
    body = json.dumps({"token": "T", "index": 0, "status": "ok", "outputs": [[0.1, 2], [3, 4]],
                       "round_ms": [4.0, 1.0, 2.0], "load_ms": 12.0,
                       "info": {"threads_used": 2, "cross_origin_isolated": True}}).encode()
    posted = parse_result(body, token="T", pages=2, max_items=2, max_values=5)
    run = BrowserRun.from_posted(PageConfig(threads=2), posted, "never used")
    assert run.outputs.dtype == np.float32 and run.outputs[0, 0] == np.float32(0.1)
    assert run.per_item_ms == 1.0 and run.threads_used == 2
    missing = BrowserRun.from_posted(PageConfig(), None, "no result in time")
    assert (missing.status, missing.reason, missing.outputs) == ("error", "no result in time", None)
    table = str(BrowserResults([run, missing], "headless Chromium 1"))
    assert "wasm, 2 threads, isolated ok" in table and "no result in time" in table
