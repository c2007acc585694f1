"""The roofline's two ceilings, measured on this machine: the best fp32 rate and a copy's bandwidth.

Covers: :func:`measure_fp32_ceiling`, the highest float32 rate this machine reached
over a few dense kernels of ONNX Runtime and PyTorch (the ones models run on),
on one core and with the threads asked for; the :class:`Ceiling` it returns
(its value, its spread, what set it, how long it took) and the shares of it;
the nominal peak set beside it (:func:`compare_with_nominal`: what the nominal
figure assumes and what the measurement says of those assumptions); and the
balance of arithmetic against memory traffic with matched threads
(:func:`measure_copy_bandwidth`, :func:`measure_balance`). Does not cover: the
nominal figure itself (``hardware.theoretical_peak``), a model's FLOP count
(``profiling.count_flops``) or latencies (``benchmark.py``).

Why measured: a peak computed as cores x clock x FLOP per cycle is only as right
as the clock and the count of FMA units, and a program can read neither
reliably. In a virtual machine ``/proc/cpuinfo`` shows the nominal clock while
the cores boost above it; some AVX-512 parts have one 512-bit FMA unit per core
where others have two. A rate that a kernel reached is a fact: the machine does
at least that much. The ceiling is the best such fact: ``cores`` x the best rate
one core reached, or the best rate measured with all the threads where that is
higher (it cannot be, physically: cores share the power budget, caches and
memory, and their all-core clock is at most the one-core clock). The probes
include the kernels a CNN runs on, at shapes dense enough for them to reach
their best: ONNX Runtime's convolution (MLAS: its NCHWc kernel where the CPU gets
that layout, else im2col and MLAS's SGEMM), its MatMul (MLAS SGEMM, weights
packed once), PyTorch's convolution (oneDNN) and ``torch.mm`` (MKL on x86 wheels,
OpenBLAS on Arm). A rate measured later that beats the ceiling raises it
(:meth:`Ceiling.at_least`) and the report says so: other load can only make a
probe slower, never faster.
"""
from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass, field, replace

from .sessions import default_threads, fair_session_options

__all__ = ["Probe", "PROBES", "Ceiling", "measure_fp32_ceiling", "ceiling_from_rates",
           "ceiling_summary", "compare_with_nominal", "measure_copy_bandwidth", "measure_balance",
           "matmul_model", "conv_model"]


@dataclass(frozen=True)
class Probe:
    """One dense kernel timed for the ceiling.

    Attributes:
        library: ``"onnxruntime"`` or ``"torch"``.
        kernel: ``"Conv"`` or ``"MatMul"`` (ONNX Runtime), ``"conv2d"`` or ``"mm"`` (PyTorch).
        size: channels in and out (convolutions, 3x3, padding 1) or the side of square
            matrices (``MatMul``, ``mm``).
        side: the image's height and width (convolutions; batch 1).
    """

    library: str
    kernel: str
    size: int
    side: int = 0

    @property
    def flop(self) -> int:
        """2 x multiply-adds of one run."""
        if self.kernel in ("Conv", "conv2d"):
            return 2 * self.size * self.size * 9 * self.side * self.side
        return 2 * self.size ** 3

    @property
    def label(self) -> str:
        """E.g. ``"onnxruntime Conv 3x3 256ch 14x14"`` or ``"torch mm 512^3"``."""
        if self.kernel in ("Conv", "conv2d"):
            return f"{self.library} {self.kernel} 3x3 {self.size}ch {self.side}x{self.side}"
        return f"{self.library} {self.kernel} {self.size}^3"


#: The default probes: 0.23 to 0.27 GFLOP each, about 2 ms on one core of 100 GFLOP/s, so
#: that a run is rarely cut by the scheduler on a busy machine.
PROBES = (
    Probe("onnxruntime", "Conv", 256, 14), Probe("onnxruntime", "Conv", 128, 28),
    Probe("onnxruntime", "MatMul", 512), Probe("torch", "conv2d", 256, 14),
    Probe("torch", "mm", 512),
)


def matmul_model(size: int, weights):
    """An ONNX model with one MatMul node, ``a (size, size) @ b``, ``b`` a constant.

    A constant right-hand side is what a model's layers have (their weights), and
    ONNX Runtime packs it into its kernel's layout once, when the session is made,
    as it does for every Conv and MatMul weight of a real model.
    """
    from onnx import TensorProto, helper, numpy_helper

    inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "gemm", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])],
                              initializer=[numpy_helper.from_array(weights, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def conv_model(channels: int, side: int, weights):
    """An ONNX model with one 3x3 Conv node (padding 1, no bias) on a ``(1, channels, side,
    side)`` input ``x``; ``weights`` is ``(channels, channels, 3, 3)`` float32."""
    from onnx import TensorProto, helper, numpy_helper

    shape = [1, channels, side, side]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        initializer=[numpy_helper.from_array(weights, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def _probe_call(probe: Probe, threads: int):
    """A function that runs ``probe`` once (ONNX Runtime: a session with ``threads``
    intra-op threads; PyTorch: the caller sets ``torch.set_num_threads``)."""
    import numpy as np

    rng = np.random.default_rng(0)
    conv = probe.kernel in ("Conv", "conv2d")
    x_shape = (1, probe.size, probe.side, probe.side) if conv else (probe.size, probe.size)
    w_shape = (probe.size, probe.size, 3, 3) if conv else (probe.size, probe.size)
    x = rng.random(x_shape, dtype=np.float32)
    w = rng.random(w_shape, dtype=np.float32) / (probe.size * (9 if conv else 1))
    if probe.library == "onnxruntime":
        import onnxruntime as ort

        model = conv_model(probe.size, probe.side, w) if conv else matmul_model(probe.size, w)
        session = ort.InferenceSession(model.SerializeToString(), fair_session_options(threads),
                                       providers=["CPUExecutionProvider"])
        feed = {"x" if conv else "a": x}
        return lambda: session.run(None, feed)
    if probe.library != "torch":
        raise ValueError(f"unknown library {probe.library!r} in {probe}; use 'onnxruntime' "
                         "or 'torch'")
    import torch

    a, b = torch.from_numpy(x), torch.from_numpy(w)
    if conv:
        return lambda: torch.nn.functional.conv2d(a, b, padding=1)
    out = torch.empty(probe.size, probe.size)
    return lambda: torch.mm(a, b, out=out)


@dataclass(frozen=True)
class Ceiling:
    """The best fp32 rate measured on this machine, for a measurement with ``threads`` threads.

    Attributes:
        gflops: the ceiling in GFLOP/s (see ``basis``).
        threads: the thread count it is the ceiling for.
        cores: how many cores it counts (``threads``, at most the physical cores).
        per_core_gflops, per_core_probe: one core's best rate and the probe that reached it.
        threads_gflops, threads_probe: the best rate with ``threads`` threads and its probe
            (None with one thread).
        basis: how ``gflops`` follows from those, in words.
        spread: how far the median round of the probe that set the ceiling fell below its
            best round, as a fraction: how reproducible the best rate was from round to
            round in this measurement (other load widens it: it only slows rounds down).
        seconds: how long the measurement took.
        probes: one row per (probe, threads): ``probe``, ``threads``, ``gflops`` (best),
            ``rounds`` (each round's best).
        raised_by: None, or what raised the ceiling above the probes' best
            (``{"what", "gflops", "probe_gflops", "within_spread"}``).
    """

    gflops: float
    threads: int
    cores: int
    per_core_gflops: float
    per_core_probe: str
    threads_gflops: float | None
    threads_probe: str | None
    basis: str
    spread: float
    seconds: float | None
    probes: list = field(default_factory=list)
    raised_by: dict | None = None

    def share(self, gflops: float) -> float:
        """``gflops`` as a fraction of this ceiling."""
        return gflops / self.gflops

    def at_least(self, gflops: float, what: str) -> "Ceiling":
        """This ceiling, raised to a rate measured since (``what`` names it) if that is higher.

        A measured rate proves the machine does at least that much; when it beats
        the probes, they ran slowed (other programs, a lower clock at that moment).
        """
        if gflops <= self.gflops:
            return self
        return replace(self, gflops=float(gflops), raised_by={
            "what": what, "gflops": float(gflops), "probe_gflops": self.gflops,
            "within_spread": gflops <= self.gflops * (1 + self.spread)})

    def merge(self, other: "Ceiling") -> "Ceiling":
        """One ceiling from two measurements for the same threads (every round of both)."""
        if other.threads != self.threads:
            raise ValueError(f"cannot merge ceilings for {self.threads} and {other.threads} "
                             "threads; measure both with the same thread count")
        rates: dict = {}
        for row in [*self.probes, *other.probes]:
            rates.setdefault((row["probe"], row["threads"]), []).extend(row["rounds"])
        seconds = (self.seconds or 0.0) + (other.seconds or 0.0)
        return ceiling_from_rates(rates, self.threads, cores=self.cores, seconds=seconds)

    def gemm_rates(self) -> dict:
        """``{library: {"library", "size", "best_gflops", "threads"}}``: each library's best
        matrix product among the probes, with ``threads`` threads."""
        best: dict = {}
        for row in self.probes:
            library, kernel, size = row["probe"].split()[:3]
            if kernel in ("MatMul", "mm") and row["threads"] == self.threads:
                if library not in best or row["gflops"] > best[library]["best_gflops"]:
                    best[library] = {"library": library, "size": int(size.split("^")[0]),
                                     "best_gflops": row["gflops"], "threads": self.threads}
        return best

    def summary(self) -> str:
        """One line: the ceiling, how it follows from the probes, its spread and cost."""
        return ceiling_summary(self.to_dict())

    def to_dict(self) -> dict:
        """Every field, ready for JSON."""
        return {**asdict(self), "method": "best fp32 rate over dense ONNX Runtime and PyTorch "
                                          "kernels (course_utils.roofline.measure_fp32_ceiling)"}


def ceiling_summary(ceiling: dict) -> str:
    """One line for a :meth:`Ceiling.to_dict` record (what ``bench`` prints).

    Example:
        >>> ceiling_summary(ceiling_from_rates({("p", 1): [50.0, 49.0]}, 1, seconds=0.5).to_dict())
        "measured fp32 ceiling 50 GFLOP/s with 1 thread(s): one core's best (p); spread 1.0% (its median round below its best); measured in 0.5 s"
    """
    took = f"; measured in {ceiling['seconds']:.1f} s" if ceiling.get("seconds") is not None else ""
    line = (f"measured fp32 ceiling {ceiling['gflops']:.0f} GFLOP/s with {ceiling['threads']} "
            f"thread(s): {ceiling['basis']}; spread {100 * ceiling['spread']:.1f}% (its median "
            f"round below its best){took}")
    raised = ceiling.get("raised_by")
    if raised:
        line += (f"; raised from the probes' {raised['probe_gflops']:.0f} to "
                 f"{raised['gflops']:.0f} GFLOP/s by {raised['what']}, " + ("within their spread" if raised["within_spread"] else
                                          "beyond their spread: the probes ran slowed (other "
                                          "programs, a lower clock); measure on an idle machine"))
    return line


def _spread(rounds) -> float:
    """How far the median round fell below the best round, as a fraction of the best.

    A measure of how reproducible the best rate is from round to round. Other
    programs can only slow a round down, so a busy machine widens it; 0.0 with a
    single round.
    """
    ordered = sorted(rounds)
    if len(ordered) < 2 or ordered[-1] <= 0:
        return 0.0
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return (ordered[-1] - median) / ordered[-1]


def ceiling_from_rates(rates: dict, threads: int, *, cores: int | None = None,
                       seconds: float | None = None) -> Ceiling:
    """The :class:`Ceiling` that measured rates give.

    Args:
        rates: ``{(probe label, threads): [each round's best GFLOP/s]}``; the one-thread
            rows are needed, rows at ``threads`` are used when ``threads > 1``.
        threads: the thread count the ceiling is for.
        cores: the cores ``threads`` can use (default: :func:`default_threads`, the
            physical cores); the one-core rate counts ``min(threads, cores)`` times.
        seconds: how long the measurement took, for the record.

    Example:
        >>> c = ceiling_from_rates({("a", 1): [100.0, 98.0, 40.0], ("a", 2): [150.0, 190.0]},
        ...                        2, cores=2)
        >>> c.gflops, round(c.spread, 2)  # 2 cores x 100 is more than the 190 measured
        (200.0, 0.02)
    """
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    one = {label: max(v) for (label, t), v in rates.items() if t == 1 and v}
    if not one:
        raise ValueError("no one-thread rate among the measurements; the ceiling counts one "
                         "core's best rate: measure every probe with 1 thread too")
    many = {label: max(v) for (label, t), v in rates.items() if t == threads and v} \
        if threads > 1 else {}
    cores = min(threads, int(cores or default_threads()))
    core_probe = max(one, key=one.get)
    from_cores = cores * one[core_probe]
    many_probe = max(many, key=many.get) if many else None
    if many_probe is not None and many[many_probe] > from_cores:
        gflops, winner = many[many_probe], (many_probe, threads)
        basis = (f"the best rate measured with {threads} threads ({many_probe}), above "
                 f"{cores} x one core's best {one[core_probe]:.0f} GFLOP/s")
    else:
        gflops, winner = from_cores, (core_probe, 1)
        basis = (f"{cores} x {one[core_probe]:.0f} GFLOP/s, one core's best ({core_probe})"
                 if cores > 1 else f"one core's best ({core_probe})")
        if many_probe is not None:
            basis += (f"; with {threads} threads the best was {many[many_probe]:.0f} GFLOP/s "
                      f"({many_probe})")
    probes = [{"probe": label, "threads": t, "gflops": max(v), "rounds": list(v)}
              for (label, t), v in rates.items() if v]
    return Ceiling(gflops=float(gflops), threads=threads, cores=cores,
                   per_core_gflops=float(one[core_probe]), per_core_probe=core_probe,
                   threads_gflops=float(many[many_probe]) if many_probe else None,
                   threads_probe=many_probe, basis=basis, spread=_spread(rates[winner]),
                   seconds=seconds, probes=probes)


def measure_fp32_ceiling(threads: int | None = None, *, probes=PROBES, rounds: int = 4,
                         repeats: int = 2, clock=time.perf_counter) -> Ceiling:
    """Measure the best float32 rate of this machine's cores, on one core and with ``threads``.

    Every probe runs on one thread and, if ``threads > 1``, with ``threads``
    threads. The probes take turns in ``rounds`` rounds, so that a change in the
    machine's load hits them all alike; in each round a probe runs once untimed
    (its threads wake, its operands come into the caches), then ``repeats`` times
    timed, and the fastest of those is the round's rate. A probe's rate is the
    best round; the ceiling is ``cores`` x one core's best, or the best rate with
    ``threads`` threads where that is higher. Under a second on two idle cores with
    the default probes. PyTorch's thread count is restored afterwards.

    Args:
        threads: the thread count the ceiling is for (default: physical cores).
        probes: :class:`Probe` s to time (default :data:`PROBES`).
        rounds, repeats: as above (the spread needs ``rounds >= 2``).
        clock: the timer (a test can pass a fake one).

    Returns:
        A :class:`Ceiling`.

    Example:
        >>> ceiling = measure_fp32_ceiling(2)  # doctest: +SKIP
        >>> print(ceiling.summary())  # doctest: +SKIP
        measured fp32 ceiling 238 GFLOP/s with 2 thread(s): 2 x 119 GFLOP/s, one core's best ...
    """
    import torch

    threads = int(threads or default_threads())
    if threads < 1 or rounds < 1 or repeats < 1:
        raise ValueError(f"threads, rounds and repeats must be >= 1 (got {threads}, {rounds}, "
                         f"{repeats})")
    counts = [1] if threads == 1 else [1, threads]
    before, collecting = torch.get_num_threads(), gc.isenabled()
    start = clock()
    rates: dict = {}
    try:
        calls = {(probe, t): _probe_call(probe, t) for t in counts for probe in probes}
        gc.disable()  # a collection inside a timed run is not the kernel's time
        for _ in range(rounds):
            for (probe, t), call in calls.items():
                torch.set_num_threads(t)  # PyTorch's probes; ONNX Runtime's sessions have theirs
                call()  # untimed
                best = float("inf")
                for _ in range(repeats):
                    tick = clock()
                    call()
                    best = min(best, clock() - tick)
                rates.setdefault((probe.label, t), []).append(
                    probe.flop / max(best, 1e-12) / 1e9)
    finally:
        torch.set_num_threads(before)
        if collecting:
            gc.enable()
    return ceiling_from_rates(rates, threads, seconds=clock() - start)


def compare_with_nominal(ceiling: Ceiling, peak: dict) -> dict:
    """The nominal peak beside the measured ceiling, and what the comparison says.

    Args:
        ceiling: a :class:`Ceiling`.
        peak: :func:`course_utils.hardware.theoretical_peak` for the same threads.

    Returns:
        ``{"ratio": ceiling / nominal, "implied_clock_ghz", "assumed_clock_ghz",
        "sentences": [...]}``. ``implied_clock_ghz`` is the clock one core's best rate
        needs at the nominal figure's FLOP per cycle: a lower bound of the real clock if
        that per-cycle figure is right.
    """
    per_cycle, clock = peak["flop_per_cycle"], peak["clock_ghz"]
    implied = ceiling.per_core_gflops / per_cycle
    ratio = ceiling.gflops / peak["gflops"]
    sentences = [f"nominal fp32 peak {peak['gflops']:.0f} GFLOP/s = {peak['formula']}; it "
                 f"assumes: {'; '.join(peak['assumptions'])}."]
    if ratio > 1:
        sentences.append(
            f"The measured ceiling is {100 * ratio:.0f}% of the nominal figure. Rates the "
            "kernels really reached are above what its assumptions allow, so an assumption "
            f"is wrong, not the measurement: at {per_cycle} FLOP per cycle, one core's best "
            f"rate ({ceiling.per_core_gflops:.0f} GFLOP/s) takes a clock of at least "
            f"{implied:.2f} GHz, where the nominal figure assumed {clock:.2f} GHz.")
    else:
        sentences.append(
            f"The measured ceiling is {100 * ratio:.0f}% of the nominal figure. At {per_cycle} "
            f"FLOP per cycle one core's best rate ({ceiling.per_core_gflops:.0f} GFLOP/s) "
            f"needs {implied:.2f} GHz against the {clock:.2f} GHz assumed: the best kernels "
            "fall short of the nominal figure here, or it assumes too much (one 512-bit FMA "
            "unit where it counts two, a lower clock with every core busy).")
    return {"ratio": ratio, "implied_clock_ghz": implied, "assumed_clock_ghz": clock,
            "sentences": sentences}


def measure_copy_bandwidth(n_bytes: int, threads: int = 1, *, repeats: int = 20,
                           clock=time.perf_counter) -> float:
    """GB/s of copying an array of ``n_bytes`` (bytes read + bytes written), best of ``repeats``.

    One thread copies with numpy; more threads with PyTorch's ``Tensor.copy_``,
    which splits a large copy over ``torch.get_num_threads()`` threads (restored
    afterwards). An array that fits in the caches measures their bandwidth; one
    far larger than the last-level cache measures main memory's.
    """
    import numpy as np

    source = np.ones(max(1, int(n_bytes) // 4), np.float32)
    target = np.empty_like(source)
    if threads == 1:
        def copy():
            np.copyto(target, source)
    else:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(int(threads))
        a, b = torch.from_numpy(source), torch.from_numpy(target)

        def copy():
            b.copy_(a)
    try:
        copy()  # untimed: the pages are touched
        best = float("inf")
        for _ in range(repeats):
            tick = clock()
            copy()
            best = min(best, clock() - tick)
    finally:
        if threads != 1:
            torch.set_num_threads(before)
    return 2 * source.nbytes / max(best, 1e-12) / 1e9


def measure_balance(n_bytes: int, threads: int = 1, *, ceiling: Ceiling | None = None) -> dict:
    """The machine balance: FLOP per byte at which arithmetic and a copy take as long.

    Both sides with the same threads: the fp32 ceiling (one core's best with one
    thread) over the copy bandwidth of an ``n_bytes`` array. A node whose
    arithmetic intensity is far below the balance waits for memory, far above it
    for arithmetic.

    Args:
        n_bytes: the size of the array copied (e.g. the largest tensor in question).
        threads: threads for both sides (1: one core against one core).
        ceiling: a :class:`Ceiling` already measured (for ``threads``, or any ceiling
            when ``threads == 1``: its one-core rate is used); measured here if None.

    Returns:
        ``{"threads", "bytes", "gflops", "gb_per_s", "flop_per_byte"}``.
    """
    threads = int(threads)
    if ceiling is None or (threads > 1 and ceiling.threads != threads):
        ceiling = measure_fp32_ceiling(threads)
    gflops = ceiling.per_core_gflops if threads == 1 else ceiling.gflops
    bandwidth = measure_copy_bandwidth(n_bytes, threads)
    return {"threads": threads, "bytes": int(n_bytes), "gflops": gflops,
            "gb_per_s": bandwidth, "flop_per_byte": gflops / bandwidth}
