"""ONNX Runtime's graph optimisations, saved to disk and compared with the original.

Covers: saving the graph ONNX Runtime builds at a given optimisation level
(:func:`save_optimized_model`), a before/after table and chart of the op
counts (:func:`compare_graphs`) and naming the fusions (:func:`name_fused_ops`,
e.g. ``Conv+Relu``). Does not cover: counting op types (``onnx_files.py``),
drawing graphs (``graph_drawing.py``), serving Netron (``netron_view.py``) nor
timing the graphs (``benchmark.py``).

The levels, as ONNX Runtime names them:

* ``basic``: graph-preserving rewrites run before the graph is split between
  providers, so they apply to all of them (constant folding, removing redundant
  nodes, some fusions into standard ONNX ops);
* ``extended``: fusions into ONNX Runtime's own ops (``com.microsoft`` domain,
  e.g. ``FusedConv``), run after the split and only on nodes assigned to the
  providers that have such kernels (the CPU one here; CUDA and ROCm have theirs).
  A saved file holds kernels of the providers it was optimised for, runs only in
  ONNX Runtime, and the same way on every CPU;
* ``all``: adds layout changes for the CPU provider (``com.microsoft.nchwc`` ops
  whose channel blocks are MLAS's vector width: 8 floats on x86-64, 16 with
  AVX-512F). A model saved at this level is tied to the CPU it was saved on;
  ship the exported file (or one saved at ``extended``, for ONNX Runtime only).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .formatting import format_table
from .onnx_files import load_model_proto, count_ops, list_external_data, load_onnx_file
from .providers import make_session
from .sessions import OPTIMIZATION_LEVELS

__all__ = ["save_optimized_model", "compare_graphs", "GraphComparison", "name_fused_ops",
           "name_fusion", "uses_nchwc_layout"]


def _has_external_data(path: Path) -> bool:
    return bool(list_external_data(load_onnx_file(path, load_weights=False)))


def save_optimized_model(model_path, level: str, out_path=None, *, disabled_optimizers=()) -> Path:
    """Let ONNX Runtime optimise a model at ``level`` and save the graph it built.

    This is what ``SessionOptions.optimized_model_filepath`` does when a session
    is created; notebook 03 shows those lines once, this function repeats them.

    Args:
        model_path: the original ``.onnx`` file.
        level: ``"disabled"``, ``"basic"``, ``"extended"`` or ``"all"``.
        out_path: where to save; default ``<name>.<level>.onnx`` next to the
            original. Weights kept outside the original file (external data)
            go to ``<out_path>.data``.
        disabled_optimizers: names of ONNX Runtime optimizers to leave out, e.g.
            ``["NchwcTransformer"]`` to see the "all" level as a build without
            NCHWc kernels (most ARM builds) makes it.

    Returns:
        The path of the saved model.

    Raises:
        ValueError: an unknown level (the valid ones are listed).
        FileNotFoundError: ``model_path`` does not exist.

    Example:
        >>> save_optimized_model("artifacts/resnet18.onnx", "extended")  # doctest: +SKIP
        PosixPath('artifacts/resnet18.extended.onnx')
    """
    import onnxruntime as ort

    if level not in OPTIMIZATION_LEVELS:
        raise ValueError(f"unknown optimisation level {level!r}; use one of "
                         f"{', '.join(OPTIMIZATION_LEVELS)}")
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"no ONNX model at {model_path}; export it first")
    out_path = Path(out_path) if out_path else model_path.with_name(
        f"{model_path.name.removesuffix('.onnx')}.{level}.onnx")
    if out_path.resolve() == model_path.resolve():
        raise ValueError(f"saving the optimised graph over the original {model_path} would destroy "
                         "it; pass another out_path or leave it out")
    out_path.parent.mkdir(parents=True, exist_ok=True)  # ONNX Runtime does not create folders
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[level])
    options.optimized_model_filepath = str(out_path)
    # At "all", ONNX Runtime's C++ logger warns that the file is hardware specific;
    # that line bypasses Python (and would vary in notebook outputs). The notebook
    # explains it instead.
    options.log_severity_level = 3
    if _has_external_data(model_path):
        # Otherwise the saved graph points at the original's .data file by a
        # relative name, which breaks as soon as the two are in different folders.
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", f"{out_path.name}.data")
    if disabled_optimizers:
        ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"],
                             disabled_optimizers=list(disabled_optimizers))
    else:
        make_session(model_path, prefer=["CPUExecutionProvider"], options=options)
    return out_path


def uses_nchwc_layout(*, disabled_optimizers=()) -> bool:
    """Does ONNX Runtime lay out convolutions in NCHWc blocks on this CPU, at level "all"?

    Measured, not guessed from the CPU's name: a one-Conv model is optimised at
    "all" and the saved graph is searched for ``com.microsoft.nchwc`` ops. True on
    every x86-64 CPU (MLAS has NCHWc kernels for SSE, AVX, AVX2 and AVX-512, with
    blocks of 8 floats, 16 with AVX-512F); False where the build has none for the
    CPU (ONNX Runtime's ARM builds by default).

    Args:
        disabled_optimizers: as for :func:`save_optimized_model`.
    """
    import tempfile

    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((16, 16, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8, 8])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "probe.onnx"
        onnx.save(model, path)
        saved = save_optimized_model(path, "all", disabled_optimizers=disabled_optimizers)
        domains = {node.domain for node in onnx.load(saved).graph.node}
    return "com.microsoft.nchwc" in domains


@dataclass
class GraphComparison:
    """Op-type counts of several versions of one model (what :func:`compare_graphs` returns).

    Attributes:
        op_counts: label -> Counter of op types, in the order given.
    """

    op_counts: dict[str, Counter]

    @property
    def node_counts(self) -> dict[str, int]:
        """label -> number of nodes."""
        return {label: sum(counts.values()) for label, counts in self.op_counts.items()}

    def table(self) -> str:
        """The counts as a fixed-width text table, one row per op type."""
        labels = list(self.op_counts)
        ops = sorted({op for counts in self.op_counts.values() for op in counts},
                     key=lambda op: (-max(c[op] for c in self.op_counts.values()), op))
        rows = [[op, *(self.op_counts[label][op] or "." for label in labels)] for op in ops]
        rows.append(["nodes", *(self.node_counts[label] for label in labels)])
        lines = format_table(["op type", *labels], rows, align="<" + ">" * len(labels),
                             widths=[max([len(op) for op in ops] + [len("nodes")])]
                             + [max(len(label), 5) for label in labels], gap="  ", rule="-")
        lines.insert(-1, lines[1])  # a rule above the total too
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def plot(self, ax=None):
        """A grouped bar chart of the op counts (one bar per version); returns the axes."""
        import matplotlib.pyplot as plt
        import numpy as np

        labels = list(self.op_counts)
        ops = sorted({op for counts in self.op_counts.values() for op in counts})
        created = ax is None
        if created:
            _, ax = plt.subplots(figsize=(8, 0.35 * len(ops) * len(labels) / 2 + 1.5))
        y = np.arange(len(ops))
        height = 0.8 / len(labels)
        for i, label in enumerate(labels):
            values = [self.op_counts[label][op] for op in ops]
            ax.barh(y + i * height, values, height,
                    label=f"{label} ({self.node_counts[label]} nodes)")
        ax.set_yticks(y + height * (len(labels) - 1) / 2, ops)
        ax.invert_yaxis()
        ax.set_xlabel("number of nodes")
        ax.legend(loc="lower right")
        ax.set_title("Op types before and after ONNX Runtime's optimisations")
        if created:
            ax.figure.tight_layout()
        return ax


def compare_graphs(models: dict) -> GraphComparison:
    """Count the op types of several versions of a model; the first is the reference.

    Args:
        models: label -> path (or ModelProto), e.g.
            ``{"original": "a.onnx", "extended": "a.extended.onnx"}``.

    Returns:
        A :class:`GraphComparison`; ``print()`` it for the table, ``.plot()``
        for the chart. :func:`name_fused_ops` names the fusions.

    Example:
        >>> comparison = compare_graphs({"original": "artifacts/resnet18.onnx",
        ...                              "all": "artifacts/resnet18.all.onnx"})  # doctest: +SKIP
        >>> comparison.node_counts  # doctest: +SKIP
        {'original': 49, 'all': 25}
    """
    if not models:
        raise ValueError("compare_graphs() needs at least one model, e.g. {'original': path}")
    return GraphComparison({label: count_ops(model) for label, model in models.items()})


def _attribute(node, name):
    import onnx

    for attribute in node.attribute:
        if attribute.name == name:
            value = onnx.helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return None


def _covered_nodes(node, producers: dict, graph_inputs: set):
    """The original nodes that ``node`` replaces, walking back from its outputs.

    Returns None when the walk is unreliable: an output the original graph does
    not have, or a walk that reaches a graph input the node does not read
    (its inputs were renamed).
    """
    stops = set(node.input)
    covered, stack = {}, [name for name in node.output if name]
    if not all(name in producers for name in stack):
        return None
    while stack:
        name = stack.pop()
        if name in stops:
            continue
        if name in graph_inputs:
            return None
        index = producers.get(name)
        if index is None or index[0] in covered:
            continue  # an initializer, or a node already visited
        covered[index[0]] = index[1]
        stack.extend(i for i in index[1].input if i)
    return [covered[i] for i in sorted(covered)]


def name_fusion(node) -> str | None:
    """What one optimised node absorbed, from its own attributes: ``"Conv+Add+Relu"`` or None.

    ``FusedConv`` (``com.microsoft``) and the NCHWc ``Conv`` carry what they
    absorbed: a 4th input added to the result (a residual Add) and an activation.
    """
    # FusedConv (com.microsoft) and the NCHWc Conv carry what they absorbed:
    # a 4th input added to the result (a residual Add) and an activation.
    parts = [node.op_type.removeprefix("Fused")]
    if node.op_type in ("Conv", "FusedConv") and len(node.input) > 3 and node.input[3]:
        parts.append("Add")
    activation = _attribute(node, "activation")
    if activation:
        parts.append(activation)
    return "+".join(parts) if len(parts) > 1 else None


def name_fused_ops(original, optimized) -> Counter:
    """Name the fusions ONNX Runtime made: ``Counter({"Conv+Relu": 9, ...})``.

    Each node of the optimised graph is traced back to the original nodes it
    replaces (through the tensor names both graphs share); a node that replaces
    two or more is a fusion, named after them in graph order. Where tensors
    were renamed (the NCHWc layout of level "all"), the node's own attributes
    tell what it absorbed. Constant folding is not counted as a fusion.

    Args:
        original: path or ModelProto of the graph before optimisation.
        optimized: path or ModelProto of the graph after.
    """
    original, optimized = load_model_proto(original), load_model_proto(optimized)
    producers = {}
    for index, node in enumerate(original.graph.node):
        for name in node.output:
            producers[name] = (index, node)
    initializers = {t.name for t in original.graph.initializer}
    graph_inputs = {i.name for i in original.graph.input} - initializers
    fusions = Counter()
    for node in optimized.graph.node:
        covered = _covered_nodes(node, producers, graph_inputs)
        if covered is not None:
            ops = [n.op_type for n in covered if n.op_type != "Constant"]
            if len(ops) >= 2:
                fusions["+".join(ops)] += 1
            continue
        name = name_fusion(node)
        if name:
            fusions[name] += 1
    return fusions
