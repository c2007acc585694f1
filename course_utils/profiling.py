"""Where the milliseconds and the work go, and what the machine really reaches.

Covers: turning ONNX Runtime's profiler output (``SessionOptions.enable_profiling``)
into a per-operator-type time table, counting a model's floating-point work from
its ONNX graph, and one library's matrix-multiply rate at one size
(:func:`measure_gemm_rate`, also on a GPU). Does not cover: the machine's fp32
ceiling, the best rate over several kernels and libraries (``roofline.py``), the
hardware record and the nominal peak (``hardware.py``), nor timing backends
against each other (``benchmark.py``).

FLOPs follow the usual convention of two per multiply-add, counted for Conv,
ConvTranspose, Gemm and MatMul (and their int8 forms); element-wise operators,
pooling and normalisation are left out, as they are a few percent of a CNN's work.
"""
from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .onnx_files import load_onnx_file
from .roofline import matmul_model
from .sessions import default_threads, fair_session_options
from .formatting import format_table

__all__ = ["count_flops", "measure_gemm_rate", "profile_ops", "OpProfile"]

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
        proto = load_onnx_file(model, load_weights=False)  # weights' values not needed
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


def measure_gemm_rate(library: str = "torch", *, threads: int | None = None, device: str = "cpu",
                      size: int | None = None, repeats: int = 10) -> dict:
    """Measured float32 matrix-multiply rate of PyTorch (``torch.mm``) or ONNX Runtime (MatMul).

    A square ``size`` x ``size`` product does 2 size^3 FLOP on 3 size^2 floats, so
    it needs at least ``size / 6`` FLOP per byte moved: at 1024 (the CPU default)
    that is 171 FLOP per byte, far more than memory bandwidth limits, so the
    rate is set by the arithmetic units and the library's kernel. ONNX Runtime
    runs a one-node model with the benchmark's session options and a constant
    right-hand side, prepacked once as a model's weights are (an input fed at every
    run is packed at every run, which understates the kernel and would let a
    model's convolutions look faster than "the" GEMM rate). PyTorch's ``torch.mm``
    packs nothing ahead and writes into one preallocated output.

    One size of one library's product is a yardstick of that library, not the
    machine's ceiling: a model's convolutions run other kernels (ONNX Runtime's
    MLAS convolutions, PyTorch's oneDNN ones), which can beat it.
    :func:`course_utils.roofline.measure_fp32_ceiling` takes the best over several.

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

        rng = np.random.default_rng(0)
        weights = rng.random((size, size), dtype=np.float32)
        session = ort.InferenceSession(matmul_model(size, weights).SerializeToString(),
                                       fair_session_options(threads or default_threads()),
                                       providers=["CPUExecutionProvider"])
        feed = {"a": rng.random((size, size), dtype=np.float32)}
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
        lines = format_table(["op type", "calls/run", "ms/run", "share"],
                             [[r["op_type"], f"{r['calls']:.0f}", f"{r['ms']:.2f}",
                               f"{100 * r['share']:.1f}%"] for r in rows],
                             align="<>>>", widths=[24, 9, 8, 7], rule="-")
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
        threads, level: as in :func:`course_utils.sessions.fair_session_options`.
        providers: execution providers (default: CPU only).

    Returns:
        An :class:`OpProfile`; ``rows`` are slowest first. Operator types are the
        kernels ONNX Runtime really ran, after graph optimisation (a fused
        Conv+Relu shows up as one ``Conv`` or ``FusedConv``).
    """
    import onnxruntime as ort

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
