"""Timing primitives: timed samples, their summary, and backends that take turns.

Covers: :func:`time_callable` (warm-up runs, ``time.perf_counter``, the garbage
collector off while timing, an injectable clock), :func:`summarize_times`
(median, quartiles, spread), :func:`take_turns` (several backends timed in
short alternating rounds) and :func:`ratio_interval` (a bootstrap interval of a
ratio of medians, which holds one run's noise only). Does not cover: what is timed, nor the settings that make a
comparison fair (``sessions.py``) or the sweep (``benchmark.py``).
"""
from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["summarize_times", "Timing", "time_callable", "take_turns", "ratio_interval",
           "MIN_INTERVAL_SAMPLES"]

#: A 95 % bootstrap interval of a ratio of medians is reported only from this many samples
#: per side: from fewer, the resampled medians take so few distinct values that the
#: interval's ends are set by one or two runs (reports say "too few samples" instead).
MIN_INTERVAL_SAMPLES = 30


def summarize_times(samples_ms) -> dict:
    """Median, quartiles, IQR, p90, mean, min and max of timings in milliseconds.

    Percentiles use numpy's default linear interpolation.

    Example:
        >>> summarize_times([1, 2, 3, 4, 100])["median_ms"]
        3.0
    """
    values = np.asarray(list(samples_ms), dtype=float)
    if values.size == 0:
        raise ValueError("no timings to summarise; run the function at least once (repeats >= 1)")
    q1, median, q3, p90 = np.percentile(values, [25, 50, 75, 90])
    return {"n": int(values.size), "median_ms": float(median), "q1_ms": float(q1),
            "q3_ms": float(q3), "iqr_ms": float(q3 - q1), "p90_ms": float(p90),
            "mean_ms": float(values.mean()), "min_ms": float(values.min()),
            "max_ms": float(values.max())}


@dataclass
class Timing:
    """Timed samples of one configuration; warm-up runs are kept apart."""

    samples_ms: list
    warmup_ms: list = field(default_factory=list)

    @property
    def stats(self) -> dict:
        """:func:`summarize_times` of the timed samples."""
        return summarize_times(self.samples_ms)

    @property
    def median_ms(self) -> float:
        """The median of the timed samples."""
        return self.stats["median_ms"]


def time_callable(fn, *, warmup=3, repeats=None, min_repeats=10, max_repeats=1000,
                  budget_s=1.0, sync=None, timer=time.perf_counter, collect=True) -> Timing:
    """Time ``fn()`` after ``warmup`` untimed calls; return every sample in milliseconds.

    Args:
        fn: the work, called without arguments.
        warmup: calls before timing starts (first-call allocations, lazy init).
        repeats: timed calls; if None, as many as fit in ``budget_s`` judged from
            the last warm-up call, clipped to ``[min_repeats, max_repeats]``.
        sync: called after each ``fn()`` inside the timed region, e.g.
            ``torch.cuda.synchronize`` so that GPU work is finished, not just queued.
        timer: a monotonic clock in seconds (tests pass a fake one).
        collect: run a full garbage collection first (callers that time in many
            short turns collect once themselves; the collector stays off while timing).

    Example:
        >>> t = time_callable(lambda: sum(range(1000)), warmup=2, repeats=50)
        >>> len(t.samples_ms), len(t.warmup_ms)
        (50, 2)
    """
    if warmup < 0 or (repeats is not None and repeats < 1) or min_repeats < 1:
        raise ValueError(f"need warmup >= 0 and at least one timed run "
                         f"(got warmup={warmup}, repeats={repeats}, min_repeats={min_repeats})")

    def once() -> float:
        start = timer()
        fn()
        if sync is not None:
            sync()
        return (timer() - start) * 1e3

    if sync is not None:
        sync()  # nothing queued earlier may leak into the first sample
    gc_was_enabled = gc.isenabled()
    if collect:
        gc.collect()
    gc.disable()  # a collection mid-sample would be charged to the backend
    try:
        warm = [once() for _ in range(warmup)]
        if repeats is None:
            estimate = warm[-1] if warm else 0.0
            wanted = math.ceil(budget_s * 1e3 / estimate) if estimate > 0 else max_repeats
            repeats = int(min(max(wanted, min_repeats), max(max_repeats, min_repeats)))
        samples = [once() for _ in range(repeats)]
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing(samples, warm)


def take_turns(calls, cfg, headline=False):
    """Time every backend in turns of ``round_runs`` runs until each has its samples.

    Taking turns in short rounds means a change in machine load (another
    program starting, a clock change) hits every backend alike instead of
    the one that happened to run at that moment.

    Args:
        calls: ``{name: (fn, sync)}``; ``fn()`` does one run, ``sync`` is None or
            called after each run (see :func:`time_callable`).
        cfg: ``warmup``, ``budget_s``, ``min_repeats``, ``max_repeats``,
            ``round_runs`` and ``headline_samples``.
        headline: the configuration whose ratio is the headline, so it gets at
            least ``headline_samples`` samples per backend.

    Returns:
        ``(samples, first_call_ms, wanted)``, each a dict by backend name. The
        number wanted follows from the last warm-up call and the time budget,
        clipped to ``[min_repeats, max_repeats]``, and is at least
        ``headline_samples`` for the headline.
    """
    samples, first, wanted = {}, {}, {}
    gc.collect()  # once: a full collection per short turn would cost more than the turn
    for b, (fn, sync) in calls.items():
        warm = time_callable(fn, sync=sync, warmup=max(1, cfg["warmup"]), repeats=1,
                             collect=False)
        first[b], estimate = warm.warmup_ms[0], warm.warmup_ms[-1]
        n = math.ceil(cfg["budget_s"] * 1e3 / estimate) if estimate > 0 else cfg["max_repeats"]
        n = min(max(n, cfg["min_repeats"]), max(cfg["max_repeats"], cfg["min_repeats"]))
        wanted[b] = max(n, cfg["headline_samples"]) if headline else n
        samples[b] = list(warm.samples_ms)
    while any(len(samples[b]) < wanted[b] for b in calls):
        for b, (fn, sync) in calls.items():  # a change in load hits every backend alike
            runs = min(cfg["round_runs"], wanted[b] - len(samples[b]))
            if runs > 0:
                samples[b] += time_callable(fn, sync=sync, warmup=0, repeats=runs,
                                            collect=False).samples_ms
    return samples, first, wanted


def ratio_interval(numerator_ms, denominator_ms, *, confidence: float = 0.95,
                   resamples: int = 2000, seed: int = 0) -> tuple:
    """Bootstrap interval of ``median(numerator) / median(denominator)``.

    Each list is resampled with replacement on its own (the two backends' runs
    are treated as independent samples), the ratio of medians is taken for every
    resample, and the central ``confidence`` share of those ratios is returned.
    Seeded, so the same samples give the same interval.

    What it covers: the noise between the runs of this one measurement. What it
    does not: how far another measurement would land. A second run starts other
    processes, gets other cores, clocks, cache and memory placement and other
    neighbours; such differences shift every sample of a run together and are not
    in its spread, so a rerun can fall outside this interval. Runs of one process
    are also not fully independent (the backends take turns, the clock drifts).
    Compare runs of separate processes to see that variation.

    Example:
        >>> low, high = ratio_interval([10, 11, 12, 10, 11], [5, 5.5, 6, 5, 5.5])
        >>> low <= 2.0 <= high
        True
    """
    a = np.asarray(list(numerator_ms), dtype=float)
    b = np.asarray(list(denominator_ms), dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("need timings of both backends for a ratio interval")
    rng = np.random.default_rng(seed)
    ratios = (np.median(rng.choice(a, (resamples, a.size)), axis=1)
              / np.median(rng.choice(b, (resamples, b.size)), axis=1))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)
