"""Tests for course_utils/timing.py: warm-up, repeats, statistics and turns, on a fake clock.

Nothing here asserts a speed: the timer is injected, so every figure is known in advance.
"""
import numpy as np
import pytest

from course_utils import timing as timing_module


class FakeClock:
    """A timer whose every call to ``fn`` takes the next duration from a list (seconds)."""

    def __init__(self, durations_s):
        self.now, self.durations = 0.0, list(durations_s)
        self.calls = 0

    def __call__(self):
        return self.now

    def work(self):
        self.now += self.durations[self.calls]
        self.calls += 1


def test_warmup_runs_are_made_but_not_timed():
    """Are the warm-up calls made, kept apart, and left out of the statistics?"""
    clock = FakeClock([1.0, 0.5] + [0.010] * 5)  # two slow cold calls, then 10 ms each
    timing = timing_module.time_callable(clock.work, warmup=2, repeats=5, timer=clock)
    assert clock.calls == 7
    assert timing.warmup_ms == pytest.approx([1000.0, 500.0])
    assert timing.samples_ms == pytest.approx([10.0] * 5)
    assert timing.median_ms == pytest.approx(10.0)


def test_statistics_on_a_synthetic_timer():
    """Are median, quartiles, IQR and p90 those of the samples (linear interpolation)?"""
    durations_ms = [7, 3, 10, 1, 5, 9, 2, 8, 6, 4]  # 1..10 ms, shuffled
    clock = FakeClock([d / 1e3 for d in durations_ms])
    stats = timing_module.time_callable(clock.work, warmup=0, repeats=10, timer=clock).stats
    # sorted 1..10: position p/100 * 9 -> q1 at 2.25, median at 4.5, q3 at 6.75, p90 at 8.1
    assert stats["n"] == 10
    assert stats["median_ms"] == pytest.approx(5.5)
    assert stats["q1_ms"] == pytest.approx(3.25)
    assert stats["q3_ms"] == pytest.approx(7.75)
    assert stats["iqr_ms"] == pytest.approx(4.5)
    assert stats["p90_ms"] == pytest.approx(9.1)
    assert stats["mean_ms"] == pytest.approx(5.5)
    assert (stats["min_ms"], stats["max_ms"]) == pytest.approx((1.0, 10.0))


def test_one_outlier_moves_the_mean_not_the_median():
    """Does the median shrug off one descheduled run that drags the mean?"""
    stats = timing_module.summarize_times([10.0] * 19 + [500.0])
    assert stats["median_ms"] == pytest.approx(10.0)
    assert stats["mean_ms"] == pytest.approx(34.5)


@pytest.mark.parametrize("budget_s, expected", [(0.1, 10), (10.0, 50), (0.001, 3)])
def test_repeats_fill_the_time_budget_within_bounds(budget_s, expected):
    """Are the repeats sized from the last warm-up run and clipped to [min, max]?"""
    clock = FakeClock([0.010] * 100)
    timing = timing_module.time_callable(clock.work, warmup=1, budget_s=budget_s, min_repeats=3,
                                 max_repeats=50, timer=clock)
    assert len(timing.samples_ms) == expected


def test_sync_runs_inside_the_timed_region():
    """Is a GPU-style sync charged to the sample (work queued is not work done)?"""
    clock = FakeClock([0.001] * 4)
    syncs = []

    def sync():
        syncs.append(clock.now)
        clock.now += 0.004  # waiting for the device

    timing = timing_module.time_callable(clock.work, warmup=1, repeats=3, sync=sync, timer=clock)
    assert timing.samples_ms == pytest.approx([5.0] * 3)
    assert len(syncs) == 1 + 4  # once before anything, then after every call


def test_garbage_collector_is_restored():
    """Is the garbage collector on again after timing, even when the function raises?"""
    import gc

    def boom():
        raise RuntimeError("fails on purpose")

    with pytest.raises(RuntimeError):
        timing_module.time_callable(boom, warmup=0, repeats=1)
    assert gc.isenabled()


def test_bad_repeat_counts_are_refused():
    """Is a request for no timed runs refused with the numbers named?"""
    with pytest.raises(ValueError, match="repeats=0"):
        timing_module.time_callable(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="no timings"):
        timing_module.summarize_times([])


def test_turns_alternate_and_the_headline_gets_its_samples():
    """Do the backends take turns of `round_runs` runs, with more samples at the headline shape?"""
    order = []

    def call(name):
        return (lambda: order.append(name)), None

    cfg = {"warmup": 1, "budget_s": 0.0, "min_repeats": 4, "max_repeats": 4, "round_runs": 2,
           "headline_samples": 6}
    samples, _, wanted = timing_module.take_turns({"a": call("a"), "b": call("b")}, cfg, headline=True)
    assert wanted == {"a": 6, "b": 6} and all(len(v) == 6 for v in samples.values())
    timed = order[4:]  # after each backend's warm-up call and first timed call
    assert timed == ["a", "a", "b", "b"] * 2 + ["a", "b"]
    _, _, wanted = timing_module.take_turns({"a": call("a")}, cfg, headline=False)
    assert wanted == {"a": 4}


@pytest.mark.parametrize("seed", range(5))
def test_ratio_interval_contains_the_point_estimate(seed):
    """Does the bootstrap interval hold the ratio of medians, narrow with many samples?"""
    from course_utils.timing import ratio_interval

    rng = np.random.default_rng(seed)
    slow = 30 * (1 + 0.1 * rng.standard_exponential(60))  # skewed, like real timings
    fast = 15 * (1 + 0.1 * rng.standard_exponential(60))
    point = np.median(slow) / np.median(fast)
    low, high = ratio_interval(slow, fast)
    assert low <= point <= high and high - low < 0.3 * point
    assert ratio_interval(slow, fast) == (low, high)  # seeded: the same answer twice
    few_low, few_high = ratio_interval(slow[:8], fast[:8])
    assert few_high - few_low > high - low  # fewer samples, wider interval
