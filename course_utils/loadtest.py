"""A short, bounded load test against a server on this machine.

Covers: sending a fixed number of identical requests from a few concurrent
clients to a URL on 127.0.0.1 (never another host), stopping early at a time
limit, and reporting requests per second and p50/p95 latency as a
:class:`LoadTestResult`, a text table and a plot. Does not cover: starting the
server (see ``serving.py``) nor micro-benchmarks of a session without HTTP
(see ``benchmark.py``).

Every loop here is bounded twice: by a request count (at most
``MAX_REQUESTS``) and by a wall-clock limit (at most ``MAX_SECONDS``).
"""
from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from .formatting import format_table

__all__ = ["LoadTestResult", "run_load_test", "format_results", "plot_results"]

MAX_REQUESTS = 10_000
MAX_CLIENTS = 32
MAX_SECONDS = 300.0
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class LoadTestResult:
    """What one load test measured.

    Attributes:
        name: a label for tables and plots, e.g. ``"digits-ort"``.
        requested: the number of requests asked for.
        clients: the number of concurrent clients.
        latencies_ms: the latency of every successful request, in milliseconds.
        errors: requests that failed (non-2xx status or a connection error).
        duration_s: wall time from the first request sent to the last answered.
        status_counts: how many responses had each HTTP status (0 = no response).
        stopped_early: True if the time limit ended the test before all requests.
    """

    name: str
    requested: int
    clients: int
    latencies_ms: np.ndarray
    errors: int
    duration_s: float
    status_counts: dict[int, int] = field(default_factory=dict)
    stopped_early: bool = False

    @property
    def completed(self) -> int:
        """Requests answered successfully."""
        return int(self.latencies_ms.size)

    @property
    def rps(self) -> float:
        """Successful requests per second over the whole test."""
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the latencies in ms.

        NaN when too few requests succeeded for it to mean anything: a percentile above
        the median needs at least one latency beyond it, e.g. 20 for the 95th.
        """
        needed = max(1, math.ceil(100 / (100 - q))) if q > 50 else 1
        if self.completed < needed:
            return float("nan")
        return float(np.percentile(self.latencies_ms, q))

    @property
    def p50_ms(self) -> float:
        """Median latency in ms."""
        return self.percentile_ms(50)

    @property
    def p95_ms(self) -> float:
        """95th-percentile latency in ms: 1 request in 20 is slower."""
        return self.percentile_ms(95)

    def as_row(self) -> dict:
        """The figures of one row of :func:`format_results`, as a dict."""
        return {"endpoint": self.name, "requests": self.completed, "errors": self.errors,
                "clients": self.clients, "rps": round(self.rps, 1),
                "p50_ms": round(self.p50_ms, 2), "p95_ms": round(self.p95_ms, 2)}


def _check_bounds(url: str, requests: int, clients: int, time_limit_s: float) -> None:
    host = urlsplit(url).hostname
    if host not in _LOOPBACK_HOSTS:
        raise ValueError(f"the load test only targets this machine (127.0.0.1), got host "
                         f"{host!r} in {url!r}; start the server with serve_app and use its url")
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be 1 to {MAX_REQUESTS}, got {requests}")
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients must be 1 to {MAX_CLIENTS}, got {clients}")
    if not 0 < time_limit_s <= MAX_SECONDS:
        raise ValueError(f"time_limit_s must be above 0 and at most {MAX_SECONDS:g}, "
                         f"got {time_limit_s}")


def run_load_test(url: str, body, *, name: str | None = None, requests: int = 200,
                  clients: int = 4, warmup: int = 5, time_limit_s: float = 30.0,
                  content_type: str = "application/json") -> LoadTestResult:
    """POST the same ``body`` to ``url`` ``requests`` times from ``clients`` threads.

    Each client keeps one HTTP connection open (as a real client library would)
    and takes the next request number until all are sent or ``time_limit_s``
    has passed. ``warmup`` requests are sent first, one at a time, and not
    counted, so one-off costs (connection set-up, first inference) stay out.

    Args:
        url: the endpoint, on 127.0.0.1 / localhost only.
        body: a dict or list (sent as JSON) or bytes (sent as they are).
        name: the label for tables and plots (default: the URL's path).
        requests: how many requests to time (1 to 10,000).
        clients: how many concurrent clients (1 to 32).
        warmup: untimed requests sent before the test.
        time_limit_s: stop sending after this many seconds (at most 300).
        content_type: the Content-Type header for a bytes body.

    Returns:
        A :class:`LoadTestResult`.

    Raises:
        ValueError: for a non-loopback host or out-of-range bounds.
        RuntimeError: if a warm-up request fails (with the server's answer).

    Example:
        >>> result = run_load_test(f"{server.url}/models/digits-ort/predict",  # doctest: +SKIP
        ...                        {"pixels": x[:1].tolist()}, requests=200, clients=4)
        >>> result.as_row()  # doctest: +SKIP
        {'endpoint': '/models/digits-ort/predict', 'requests': 200, 'errors': 0, ...}
    """
    import httpx

    _check_bounds(url, requests, clients, time_limit_s)
    if not isinstance(body, (bytes, bytearray)):
        body, content_type = json.dumps(body).encode(), "application/json"
    headers = {"content-type": content_type}
    with httpx.Client(timeout=30.0) as client:
        for _ in range(warmup):
            response = client.post(url, content=body, headers=headers)
            if response.status_code >= 300:
                raise RuntimeError(f"the warm-up request to {url} got HTTP "
                                   f"{response.status_code}: {response.text[:300]}; "
                                   "fix the request before load testing")

    lock = threading.Lock()
    sent = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + time_limit_s

    def take_ticket() -> bool:
        nonlocal sent
        with lock:
            if sent >= requests or time.perf_counter() > deadline:
                return False
            sent += 1
            return True

    def client_loop() -> None:
        with httpx.Client(timeout=min(30.0, time_limit_s)) as client:
            while take_ticket():
                start = time.perf_counter()
                try:
                    status = client.post(url, content=body, headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                elapsed_ms = (time.perf_counter() - start) * 1e3
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    if 200 <= status < 300:
                        latencies.append(elapsed_ms)

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(time_limit_s + 35.0)  # a request can still run past the deadline
    duration = time.perf_counter() - started
    ok = len(latencies)
    return LoadTestResult(
        name=name or urlsplit(url).path, requested=requests, clients=clients,
        latencies_ms=np.array(latencies), errors=sum(statuses.values()) - ok,
        duration_s=duration, status_counts=dict(sorted(statuses.items())),
        stopped_early=sum(statuses.values()) < requests)


def format_results(results: list[LoadTestResult]) -> str:
    """Return a fixed-width text table: one row per result, RPS and p50/p95 in ms."""
    width = max([len("endpoint")] + [len(r.name) for r in results])
    lines = format_table(["endpoint", "requests", "errors", "clients", "req/s", "p50 ms", "p95 ms"],
                         [[r.name, r.completed, r.errors, r.clients, f"{r.rps:.1f}",
                           f"{r.p50_ms:.2f}", f"{r.p95_ms:.2f}"] for r in results],
                         align="<>>>>>>", widths=[width, 8, 6, 7, 8, 8, 8], rule="-")
    for index, r in enumerate(results, start=2):
        if r.stopped_early:
            lines[index] += "  (stopped at the time limit)"
    return "\n".join(lines)


def plot_results(results: list[LoadTestResult]):
    """Plot requests per second and p50/p95 latency side by side; return the figure.

    Bars carry their values; an axis switches to a log scale when its values
    span more than 20x (a tiny model next to resnet18), and says so.
    """
    import matplotlib.pyplot as plt

    names = [r.name for r in results]
    positions = np.arange(len(results))
    fig, (ax_rps, ax_lat) = plt.subplots(1, 2, figsize=(10, 3.8))
    bars = ax_rps.bar(positions, [r.rps for r in results], color="tab:blue")
    ax_rps.bar_label(bars, fmt="%.1f", fontsize=8)
    width = 0.38
    for offset, label, values in [(-width / 2, "p50", [r.p50_ms for r in results]),
                                  (width / 2, "p95", [r.p95_ms for r in results])]:
        bars = ax_lat.bar(positions + offset, values, width, label=label)
        ax_lat.bar_label(bars, fmt="%.0f", fontsize=8)
    ax_lat.legend()
    for ax, title, unit in [(ax_rps, "throughput (higher is better)", "requests per second"),
                            (ax_lat, "latency (lower is better)", "milliseconds")]:
        values = [v for c in ax.containers for v in c.datavalues if v > 0]
        log = bool(values) and max(values) > 20 * min(values)
        if log:
            ax.set_yscale("log")
            ax.set_ylim(min(values) / 2, max(values) * 3)  # room for the labels
        ax.set(title=title + (" (log scale)" if log else ""), ylabel=unit)
        ax.set_xticks(positions, names, rotation=15)
    clients = sorted({r.clients for r in results})
    fig.suptitle(f"loopback load test, {', '.join(map(str, clients))} concurrent clients")
    fig.tight_layout()
    return fig
