"""Where the milliseconds and the work go, and what the machine can do.

Covers: turning ONNX Runtime's profiler output (``SessionOptions.enable_profiling``)
into a per-operator-type time table, counting a model's floating-point work from
its ONNX graph, the roofline's two ceilings (the theoretical fp32 peak from the
cores, the clock and the vector units the CPU flags show, and the measured
matrix-multiply rate of PyTorch and of ONNX Runtime), and the hardware record
kept with every benchmark. Does not cover: timing backends against each other
(``benchmark.py``).

FLOPs follow the usual convention of two per multiply-add, counted for Conv,
ConvTranspose, Gemm and MatMul (and their int8 forms); element-wise operators,
pooling and normalisation are left out, as they are a few percent of a CNN's work.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["count_flops", "theoretical_peak", "measure_gemm_rate", "profile_ops", "OpProfile",
           "describe_hardware"]

_FLAGS = ("sse2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
          "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve")
#: CPU flags of int8 dot-product instructions (x86 VNNI and AMX, Arm dot product and i8mm).
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")

# op type -> index of the weight input (Conv-like) or None (MatMul-like)
_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "ConvTranspose": 1}
_MATMUL_A = {"MatMul": 0, "MatMulInteger": 0, "QLinearMatMul": 0, "Gemm": 0}


def _shapes_after_inference(proto, input_shapes):
    import onnx

    initializers = {init.name for init in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if not isinstance(input_shapes, dict):
        input_shapes = {inputs[0].name: tuple(input_shapes)}
    unknown = set(input_shapes) - {i.name for i in inputs}
    if unknown:
        raise ValueError(f"the model has no input(s) {sorted(unknown)}; its inputs are "
                         f"{[i.name for i in inputs]}")
    for graph_input in inputs:
        if graph_input.name in input_shapes:
            dims, shape = graph_input.type.tensor_type.shape.dim, input_shapes[graph_input.name]
            if len(dims) != len(shape):
                raise ValueError(f"input {graph_input.name!r} has rank {len(dims)}, "
                                 f"but the shape given is {tuple(shape)}")
            for dim, value in zip(dims, shape):
                dim.Clear()
                dim.dim_value = int(value)
    del proto.graph.value_info[:]  # stale symbolic shapes would win over the concrete ones
    inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    shapes = {init.name: list(init.dims) for init in inferred.graph.initializer}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return inferred, shapes


def count_flops(model, input_shapes, op_types=None) -> int:
    """Floating-point operations of one run of an ONNX model at concrete input shapes.

    Args:
        model: a path to an ``.onnx`` file or an ``onnx.ModelProto`` (not modified).
        input_shapes: the shape of the first input, e.g. ``(1, 3, 224, 224)``, or a
            dict ``{input_name: shape}``; dynamic dimensions need a value here.
        op_types: count only these operator types (default: all of them).

    Returns:
        2 x multiply-adds of every Conv, ConvTranspose, Gemm and MatMul node.

    Raises:
        ValueError: a shape the graph's shape inference cannot resolve (the node is named).

    Example:
        >>> count_flops("artifacts/resnet18.onnx", (1, 3, 224, 224)) / 1e9  # doctest: +SKIP
        3.64
    """
    import onnx

    proto = onnx.ModelProto()
    if isinstance(model, onnx.ModelProto):
        proto.CopyFrom(model)
    else:
        if not Path(model).is_file():
            raise FileNotFoundError(f"no ONNX model at {model}; export one first")
        proto = onnx.load(str(model), load_external_data=False)  # weights' values not needed
    graph, shapes = _shapes_after_inference(proto, input_shapes)
    total = 0
    for node in graph.graph.node:
        if node.op_type not in _CONV_WEIGHT and node.op_type not in _MATMUL_A:
            continue
        if op_types is not None and node.op_type not in op_types:
            continue
        out = shapes.get(node.output[0])
        if node.op_type in _CONV_WEIGHT:
            weight = shapes.get(node.input[_CONV_WEIGHT[node.op_type]])
            # Conv: every output element is a dot product over (C/groups) x kernel
            # ConvTranspose: every input element is scattered over (M/groups) x kernel
            base = shapes.get(node.input[0]) if node.op_type == "ConvTranspose" else out
            needed = (base, weight)
            work = lambda: math.prod(base) * math.prod(weight[1:])  # noqa: E731
        else:
            a = shapes.get(node.input[_MATMUL_A[node.op_type]])
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            needed = (out, a)
            work = lambda: math.prod(out) * (a[0] if trans_a else a[-1])  # noqa: E731
        if any(s is None or None in s for s in needed):
            raise ValueError(f"cannot count the FLOPs of node {node.name or node.op_type!r} "
                             f"({node.op_type}): shape inference left its shapes unknown; "
                             "give every dynamic input dimension a value in input_shapes")
        total += 2 * work()
    return int(total)


def describe_hardware(device: str = "cpu") -> dict:
    """CPU model, cores, relevant instruction-set flags, GPU and library versions."""
    import onnx
    import onnxruntime as ort
    import torch

    from .benchmark import default_threads

    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = None  # not Linux: model from platform, flags and clock unknown
    for line in (cpuinfo or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            cpu = value.strip()
        elif key.strip() in ("flags", "Features"):
            flags = set(value.split())
    clock_ghz, clock_source = _cpu_clock(cpuinfo)
    info = {"cpu": cpu, "machine": platform.machine(), "physical_cores": default_threads(),
            "clock_ghz": clock_ghz, "clock_source": clock_source,
            "logical_cores": os.cpu_count(), "flags": {f: f in flags for f in _FLAGS},
            "flags_known": bool(flags), "int8_dot_product": any(f in flags for f in INT8_DOT_FLAGS),
            "os": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": ort.__version__, "onnx": onnx.__version__,
            "gpu": None}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        # PyTorch convolutions use TF32 tensor cores by default (matmuls do not)
        info["torch_conv_tf32"] = torch.backends.cudnn.allow_tf32
    return info


def _cpu_clock(text: str | None):
    """(GHz, where it came from) of this CPU's clock, from cpufreq or the text of
    /proc/cpuinfo (None where unreadable); (None, reason) when nothing says."""
    import re

    try:  # the highest clock the OS may run a core at (absent in most VMs)
        khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()
        return int(khz) / 1e6, "the maximum clock cpufreq reports"
    except (OSError, ValueError):
        pass
    if text is None:
        return None, "no clock readable on this OS"
    named = re.search(r"^model name\s*:.*@\s*([\d.]+)\s*GHz", text, re.MULTILINE)
    if named:
        return float(named.group(1)), "the base clock in the CPU's name (turbo may be higher)"
    current = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.MULTILINE)
    if current:
        return float(current.group(1)) / 1e3, ("the clock /proc/cpuinfo reports "
                                                 "(the turbo clock may be higher)")
    return None, "no clock in /proc/cpuinfo or cpufreq"


#: Clock used when the machine does not say; the result says it was assumed.
ASSUMED_CLOCK_GHZ = 3.0
#: FMA units per core assumed: two on every x86 core since Haswell / Zen 2 and on big Arm cores.
ASSUMED_FMA_UNITS = 2


def theoretical_peak(hardware: dict, threads: int | None = None, *, clock_ghz=None,
                     fma_units: int = ASSUMED_FMA_UNITS) -> dict:
    """The fp32 peak this CPU could reach if every FMA unit did an FMA every cycle.

    peak = cores x clock x FLOP per cycle, where FLOP per cycle = fp32 lanes of the
    widest vector the flags show (512 bits with ``avx512f``, 256 with ``avx``,
    128 with SSE2 or Arm ``asimd``) x 2 (an FMA is a multiply and an add) x the
    FMA units per core. Without ``fma``, a separate multiply and add unit give
    the same two FLOP per lane. Cores are ``min(threads, physical cores)``.

    Args:
        hardware: a :func:`describe_hardware` record (``flags``, ``physical_cores``,
            ``clock_ghz``, ``clock_source``).
        threads: threads the measurement used (default: every physical core).
        clock_ghz: override the clock (GHz).
        fma_units: FMA units per core; not visible in the flags, so assumed.

    Returns:
        ``{"gflops", "cores", "clock_ghz", "vector_bits", "flop_per_cycle",
        "assumptions": [sentences], "formula": str}``.

    Example:
        >>> hw = {"flags": {"avx2": True, "fma": True}, "physical_cores": 2,
        ...       "clock_ghz": 3.0, "clock_source": "a test"}
        >>> theoretical_peak(hw)["gflops"]  # 2 cores x 3 GHz x 8 lanes x 2 x 2 units
        192.0
    """
    flags = {name for name, has in hardware.get("flags", {}).items() if has}
    assumptions = [f"{fma_units} FMA units per core (the flags do not show how many)"]
    if "avx512f" in flags:
        bits = 512
        assumptions.append("512-bit vectors at full rate; some CPUs (AMD Zen 4) run them as "
                           "two 256-bit halves, which halves this peak")
    elif "avx" in flags:
        bits = 256
    elif flags & {"sse2", "asimd"} or hardware.get("machine") in ("x86_64", "AMD64", "aarch64"):
        bits = 128
    else:
        bits = 128
        assumptions.append("128-bit vectors (no SIMD flags readable)")
    if not hardware.get("flags_known", bool(flags)):
        assumptions.append("instruction-set flags unreadable: vector width guessed")
    cores = int(hardware.get("physical_cores") or 1)
    if threads:
        cores = min(cores, int(threads))
    if clock_ghz is None:
        clock_ghz = hardware.get("clock_ghz")
        if clock_ghz:
            assumptions.append(f"{clock_ghz:.2f} GHz, {hardware.get('clock_source', 'as given')}")
        else:
            clock_ghz = ASSUMED_CLOCK_GHZ
            assumptions.append(f"the clock is not known ({hardware.get('clock_source', 'none')}); "
                               f"{ASSUMED_CLOCK_GHZ} GHz assumed")
    lanes = bits // 32
    per_cycle = lanes * 2 * fma_units
    return {"gflops": cores * float(clock_ghz) * per_cycle, "cores": cores,
            "clock_ghz": float(clock_ghz), "vector_bits": bits, "flop_per_cycle": per_cycle,
            "assumptions": assumptions,
            "formula": f"{cores} cores x {float(clock_ghz):.2f} GHz x {per_cycle} FLOP/cycle "
                       f"({lanes} fp32 lanes x 2 x {fma_units} FMA units)"}


def _one_matmul_model(size: int):
    """An ONNX model with one MatMul node: (size, size) @ (size, size)."""
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in "ab"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "gemm", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def measure_gemm_rate(library: str = "torch", *, threads: int | None = None, device: str = "cpu",
                      size: int | None = None, repeats: int = 10) -> dict:
    """Measured float32 matrix-multiply rate of PyTorch (``torch.mm``) or ONNX Runtime (MatMul).

    A square ``size`` x ``size`` product does 2 size^3 FLOP on 3 size^2 floats, so
    it needs at least ``size / 6`` FLOP per byte moved: at 1024 (the CPU default)
    that is 171 FLOP per byte, far more than memory bandwidth limits, so the
    rate is set by the arithmetic units and the library's kernel. ONNX Runtime
    runs a one-node model with the benchmark's session options.

    Args:
        library: ``"torch"`` or ``"onnxruntime"``.
        threads: intra-op threads (PyTorch's setting is restored afterwards).
        device: ``"cpu"`` or ``"cuda"`` (ONNX Runtime: CPU only).
        size: the matrices' side (default 1024 on the CPU, 4096 on a GPU).
        repeats: timed products after two warm-up ones.

    Returns:
        ``{"library", "size", "best_gflops", "median_gflops", "flop_per_byte", "runs"}``.
    """
    import numpy as np

    size = int(size or (4096 if device == "cuda" else 1024))
    times = []
    if library == "torch":
        import torch

        previous = torch.get_num_threads()
        if threads:
            torch.set_num_threads(int(threads))
        try:
            a, b = (torch.rand(size, size, device=device) for _ in range(2))
            out = torch.empty(size, size, device=device)
            for i in range(repeats + 2):  # two warm-up products
                if device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                torch.mm(a, b, out=out)
                if device == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        finally:
            torch.set_num_threads(previous)
    elif library == "onnxruntime":
        if device != "cpu":
            raise ValueError("measure_gemm_rate times ONNX Runtime on the CPU only; "
                             "use library='torch' for the GPU")
        import onnxruntime as ort

        from .benchmark import default_threads, fair_session_options

        session = ort.InferenceSession(_one_matmul_model(size).SerializeToString(),
                                       fair_session_options(threads or default_threads()),
                                       providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feed = {n: rng.random((size, size), dtype=np.float32) for n in "ab"}
        for _ in range(repeats + 2):
            start = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - start)
    else:
        raise ValueError(f"unknown library {library!r}; use 'torch' or 'onnxruntime'")
    timed = times[2:]
    work = 2 * size**3 / 1e9
    return {"library": library, "size": size, "best_gflops": work / min(timed),
            "median_gflops": work / statistics.median(timed), "flop_per_byte": size / 6,
            "runs": len(timed)}


@dataclass
class OpProfile:
    """Per-operator-type kernel time of ``runs`` profiled runs (milliseconds per run)."""

    rows: list  # dicts: op_type, calls, ms, share; slowest first
    run_ms: float  # mean wall time of one whole run, as the profiler saw it
    runs: int

    @property
    def kernel_ms(self) -> float:
        """Kernel time of one run, all operator types together."""
        return sum(r["ms"] for r in self.rows)

    def format_table(self, top: int | None = None) -> str:
        """The rows as text; operators beyond ``top`` are summed into one line."""
        rows = self.rows if top is None or len(self.rows) <= top else [
            *self.rows[:top], {"op_type": f"({len(self.rows) - top} others)",
                               "calls": sum(r["calls"] for r in self.rows[top:]),
                               "ms": sum(r["ms"] for r in self.rows[top:]),
                               "share": sum(r["share"] for r in self.rows[top:])}]
        lines = [f"{'op type':<24} {'calls/run':>9} {'ms/run':>8} {'share':>7}", "-" * 51]
        lines += [f"{r['op_type']:<24} {r['calls']:>9.0f} {r['ms']:>8.2f} {100 * r['share']:>6.1f}%"
                  for r in rows]
        lines.append(f"{'kernels / whole run':<24} {'':>9} {self.kernel_ms:>8.2f} "
                     f"/ {self.run_ms:.2f}")
        return "\n".join(lines)


def profile_ops(onnx_path, feed: dict, *, runs: int = 10, warmup: int = 2,
                threads: int | None = None, level: str = "all", providers=None) -> OpProfile:
    """Run a model under ONNX Runtime's profiler and sum kernel time per operator type.

    Args:
        onnx_path: the model.
        feed: ``{input_name: array}`` for ``session.run``.
        runs: profiled runs that count; ``warmup`` runs before them are left out.
        threads, level: as in :func:`course_utils.benchmark.fair_session_options`.
        providers: execution providers (default: CPU only).

    Returns:
        An :class:`OpProfile`; ``rows`` are slowest first. Operator types are the
        kernels ONNX Runtime really ran, after graph optimisation (a fused
        Conv+Relu shows up as one ``Conv`` or ``FusedConv``).
    """
    import onnxruntime as ort

    from .benchmark import default_threads, fair_session_options

    options = fair_session_options(threads or default_threads(), level)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="ort-profile-") as folder:
        options.profile_file_prefix = str(Path(folder) / "profile")
        session = ort.InferenceSession(str(onnx_path), options,
                                       providers=list(providers or ["CPUExecutionProvider"]))
        for _ in range(warmup + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    model_runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    if len(model_runs) < warmup + runs:
        raise RuntimeError(f"the profile holds {len(model_runs)} runs, expected {warmup + runs}; "
                           "is another profiler writing to the same file?")
    counted = model_runs[warmup:]
    start = counted[0]["ts"]
    totals: dict[str, list] = {}
    for event in events:
        if (event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time")
                and event["ts"] >= start):
            entry = totals.setdefault(event["args"].get("op_name", "?"), [0, 0.0])
            entry[0] += 1
            entry[1] += event["dur"] / 1e3  # microseconds -> ms
    all_ms = sum(ms for _, ms in totals.values()) or 1.0
    rows = sorted(({"op_type": op, "calls": n / runs, "ms": ms / runs, "share": ms / all_ms}
                   for op, (n, ms) in totals.items()), key=lambda r: -r["ms"])
    return OpProfile(rows=rows, run_ms=statistics.fmean(e["dur"] / 1e3 for e in counted),
                     runs=runs)
