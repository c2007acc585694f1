"""Tests for course_utils/loadtest.py: bounded load tests against a local server."""
import time

import numpy as np
import pytest

from course_utils.loadtest import (MAX_CLIENTS, MAX_REQUESTS, LoadTestResult, format_results,
                                   plot_results, run_load_test)
from course_utils.serving import ModelEndpoint, make_app, serve_app


def _slow_identity(delay_s):
    def predict(batch):
        time.sleep(delay_s)
        return batch
    return predict


@pytest.fixture(scope="module")
def server():
    endpoints = [ModelEndpoint("fast", load=lambda: _slow_identity(0.0), shape=(3,)),
                 ModelEndpoint("slow", load=lambda: _slow_identity(0.2), shape=(3,))]
    with serve_app(make_app(endpoints)) as running:
        yield running


BODY = {"inputs": [[0.1, 0.7, 0.2]]}


def test_figures_are_present_and_sane(server):
    """Are all requests answered, and are RPS, p50 and p95 consistent with the latencies?"""
    result = run_load_test(f"{server.url}/models/fast/predict", BODY, name="fast",
                           requests=60, clients=3, warmup=2)
    assert (result.completed, result.errors, result.stopped_early) == (60, 0, False)
    assert result.status_counts == {200: 60}
    latencies = result.latencies_ms
    assert latencies.shape == (60,) and (latencies > 0).all()
    assert result.p95_ms == pytest.approx(np.percentile(latencies, 95))
    assert result.p50_ms == pytest.approx(np.median(latencies))
    assert result.rps == pytest.approx(60 / result.duration_s)
    # 3 clients in parallel: the wall time is less than the sum of the latencies
    assert result.duration_s < latencies.sum() / 1e3
    assert result.as_row()["endpoint"] == "fast" and result.as_row()["requests"] == 60


def test_time_limit_stops_the_test_early(server):
    """Does the time limit end a test whose request count would take far longer?"""
    start = time.perf_counter()
    result = run_load_test(f"{server.url}/models/slow/predict", BODY, requests=5000,
                           clients=2, warmup=0, time_limit_s=0.5)
    assert time.perf_counter() - start < 5
    assert result.stopped_early and 0 < result.completed < 5000
    assert "stopped at the time limit" in format_results([result])


def test_failed_warmup_names_the_servers_answer(server):
    """Does a request the server refuses fail at warm-up with the server's message?"""
    with pytest.raises(RuntimeError, match=r"HTTP 422: .*expected shape \(batch, 3\)"):
        run_load_test(f"{server.url}/models/fast/predict", {"inputs": [1, 2, 3]}, requests=5)


def test_errors_are_counted_not_timed(server):
    """Are refused requests counted as errors and kept out of the latencies?"""
    result = run_load_test(f"{server.url}/models/fast/predict", {"inputs": [1, 2, 3]},
                           requests=8, clients=2, warmup=0)
    assert (result.completed, result.errors) == (0, 8)
    assert result.status_counts == {422: 8}
    assert np.isnan(result.p95_ms) and result.rps == 0


def test_bytes_body_is_sent_as_is(server):
    """Is a bytes body sent unchanged with the given content type?"""
    result = run_load_test(f"{server.url}/models/fast/predict", b'{"inputs": [[1, 2, 3]]}',
                           requests=5, clients=1, content_type="application/json")
    assert result.completed == 5


@pytest.mark.parametrize("url", ["http://example.com/predict", "http://10.0.0.1:8000/x",
                                 "http://127.0.0.1.example.com/x"])
def test_only_loopback_is_targeted(url):
    """Is any host but this machine refused before a single request is sent?"""
    with pytest.raises(ValueError, match="only targets this machine"):
        run_load_test(url, BODY, requests=1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(requests=0), "requests must be"),
    (dict(requests=MAX_REQUESTS + 1), "requests must be"),
    (dict(clients=MAX_CLIENTS + 1), "clients must be"),
    (dict(time_limit_s=0), "time_limit_s"),
    (dict(time_limit_s=3600), "time_limit_s"),
])
def test_bounds_are_enforced(kwargs, message):
    """Are unbounded or absurd request counts, client counts and time limits refused?"""
    with pytest.raises(ValueError, match=message):
        run_load_test("http://127.0.0.1:1/x", BODY, **kwargs)


def _result(name, latencies, duration):
    return LoadTestResult(name, len(latencies), 4, np.array(latencies, float), 0, duration,
                          {200: len(latencies)})


def test_table_and_plot_show_every_endpoint():
    """Do the table and the plot show one entry per endpoint with its figures?"""
    import matplotlib

    matplotlib.use("Agg")
    results = [_result("digits-torch", [2.0, 3.0, 4.0, 10.0], 0.01),
               _result("digits-ort", [1.0, 1.5, 2.0, 3.0], 0.005)]
    table = format_results(results)
    assert table.splitlines()[0].split() == ["endpoint", "requests", "errors", "clients",
                                             "req/s", "p50", "ms", "p95", "ms"]
    assert "digits-ort" in table and "800.0" in table  # 4 requests in 5 ms
    figure = plot_results(results)
    rps_axis, latency_axis = figure.axes
    assert [t.get_text() for t in rps_axis.get_xticklabels()] == ["digits-torch", "digits-ort"]
    assert len(latency_axis.patches) == 4  # p50 and p95 per endpoint


@pytest.mark.parametrize("answered, has_p95", [(19, False), (20, True)])
def test_p95_needs_twenty_latencies(answered, has_p95):
    """Is the 95th percentile left out (NaN) until 1 request in 20 can lie above it?"""
    from course_utils.loadtest import LoadTestResult

    result = LoadTestResult("few", answered, 1, np.arange(1.0, answered + 1), 0, 1.0)
    assert np.isnan(result.p95_ms) != has_p95
    assert result.p50_ms == pytest.approx(np.median(np.arange(1.0, answered + 1)))
