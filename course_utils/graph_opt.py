"""ONNX Runtime's graph optimisations, saved to disk and compared with the original.

Covers: saving the graph ONNX Runtime builds at a given optimisation level
(:func:`save_optimized_model`), counting op types (:func:`count_ops`), a
before/after table and chart (:func:`compare_graphs`), naming the fusions
(:func:`name_fused_ops`, e.g. ``Conv+Relu``) and a static picture of a graph
drawn with matplotlib (:func:`draw_graph`) for places where a browser cannot
reach the kernel. Does not cover: serving Netron (``netron_view.py``) nor
timing the graphs (``benchmark.py``).

The levels, as ONNX Runtime names them:

* ``basic``: graph-preserving rewrites any provider can run (constant folding,
  removing redundant nodes, some fusions into standard ONNX ops);
* ``extended``: fusions into ONNX Runtime's own ops (``com.microsoft`` domain,
  e.g. ``FusedConv``), still portable between CPUs;
* ``all``: adds layout changes for this CPU (``com.microsoft.nchwc`` ops whose
  block size depends on the CPU's vector width). A model saved at this level is
  tied to the CPU it was saved on; save at ``extended`` to ship a file.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["save_optimized_model", "count_ops", "compare_graphs", "GraphComparison",
           "name_fused_ops", "draw_graph", "OPTIMIZATION_LEVELS"]


#: Level name used in the course -> the ``onnxruntime.GraphOptimizationLevel`` member.
OPTIMIZATION_LEVELS = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
_DEFAULT_DOMAINS = ("", "ai.onnx")


def _load(model):
    """A ModelProto from a path or a ModelProto (initializer data is not needed here)."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX model at {model}; export or save it first")
    return onnx.load(str(path), load_external_data=False)


def _has_external_data(path: Path) -> bool:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def save_optimized_model(model_path, level: str, out_path=None) -> Path:
    """Let ONNX Runtime optimise a model at ``level`` and save the graph it built.

    This is what ``SessionOptions.optimized_model_filepath`` does when a session
    is created; notebook 03 shows those lines once, this function repeats them.

    Args:
        model_path: the original ``.onnx`` file.
        level: ``"disabled"``, ``"basic"``, ``"extended"`` or ``"all"``.
        out_path: where to save; default ``<name>.<level>.onnx`` next to the
            original. Weights kept outside the original file (external data)
            go to ``<out_path>.data``.

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
    from .providers import make_session

    make_session(model_path, prefer=["CPUExecutionProvider"], options=options)
    return out_path


def _op_name(node) -> str:
    return node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"


def count_ops(model) -> Counter:
    """Count the nodes of a model's main graph by op type.

    Ops outside the standard ONNX domain carry their domain, so ONNX Runtime's
    own ops stand out: ``com.microsoft.FusedConv``, ``com.microsoft.nchwc.Conv``.

    Args:
        model: a path or an ``onnx.ModelProto``.
    """
    return Counter(_op_name(node) for node in _load(model).graph.node)


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
        width = max([len(op) for op in ops] + [len("nodes")])
        cols = [max(len(label), 5) for label in labels]
        header = f"{'op type':<{width}}  " + "  ".join(f"{l:>{w}}" for l, w in zip(labels, cols))
        lines = [header, "-" * len(header)]
        for op in ops:
            lines.append(f"{op:<{width}}  " + "  ".join(
                f"{self.op_counts[l][op] or '.':>{w}}" for l, w in zip(labels, cols)))
        lines.append("-" * len(header))
        lines.append(f"{'nodes':<{width}}  " + "  ".join(
            f"{self.node_counts[l]:>{w}}" for l, w in zip(labels, cols)))
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


def _fusion_from_attributes(node) -> str | None:
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
    original, optimized = _load(original), _load(optimized)
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
        name = _fusion_from_attributes(node)
        if name:
            fusions[name] += 1
    return fusions


# --- static rendering -----------------------------------------------------------------

def _layers(graph):
    """Longest-path layer of every node (graph inputs are layer 0, nodes start at 1)."""
    producers = {}
    layer = []
    for index, node in enumerate(graph.node):
        depth = 1 + max((layer[producers[i]] for i in node.input if i in producers), default=0)
        layer.append(depth)
        for name in node.output:
            producers[name] = index
    return layer, producers


def _node_label(node) -> str:
    fusion = _fusion_from_attributes(node)
    if fusion:
        return node.op_type + "\n+" + "+".join(fusion.split("+")[1:])
    return node.op_type


def _draw_one(ax, model, title: str, max_nodes: int, total_layers: int) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    graph = model.graph
    nodes = list(graph.node)[:max_nodes]
    layer, producers = _layers(graph)
    layer = layer[:len(nodes)]
    initializers = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    outputs = [o.name for o in graph.output]
    last = max(layer, default=0) + 1
    # (kind, label, layer) for every box; inputs on top, outputs at the bottom.
    boxes = [("io", name, 0) for name in inputs]
    boxes += [("op", _node_label(node), depth) for node, depth in zip(nodes, layer)]
    shown_outputs = [name for name in outputs if producers.get(name, len(nodes)) < len(nodes)]
    boxes += [("io", name, last) for name in shown_outputs]
    per_layer = Counter(depth for _, _, depth in boxes)
    seen, position = Counter(), []
    for _, _, depth in boxes:
        x = seen[depth] - (per_layer[depth] - 1) / 2
        seen[depth] += 1
        position.append((x * 1.6, -depth))
    where = {name: k for k, name in enumerate(inputs)}
    for index, node in enumerate(nodes):
        for name in node.output:
            where[name] = len(inputs) + index
    # Light fills, so that black labels stay readable; grey is kept for inputs and outputs.
    palette = plt.get_cmap("Pastel1").colors[:8] + plt.get_cmap("Pastel2").colors[:7]  # no greys
    colors = {}
    for (kind, label, _), (x, y) in zip(boxes, position):
        key = label.split("\n")[0]
        color = "#eeeeee" if kind == "io" else colors.setdefault(
            key, palette[sum(map(ord, key)) % len(palette)])
        ax.add_patch(FancyBboxPatch((x - 0.7, y - 0.33), 1.4, 0.66, boxstyle="round,pad=0.02",
                                    facecolor=color, edgecolor="#333333", linewidth=0.6))
        # 8.5 pt: readable when the figure is shown at the notebook's width
        ax.text(x, y, label, ha="center", va="center", fontsize=8.5, linespacing=0.95)
    targets = [(len(inputs) + index, node.input) for index, node in enumerate(nodes)]
    targets += [(len(inputs) + len(nodes) + k, [name]) for k, name in enumerate(shown_outputs)]
    for target, names in targets:
        for name in names:
            if name not in where:
                continue  # an initializer (weights) or a node beyond max_nodes
            (x0, y0), (x1, y1) = position[where[name]], position[target]
            if y0 - y1 > 1 and abs(x0 - x1) < 1e-9:
                # An edge that skips layers (a residual connection) runs down the
                # right-hand side instead of through the boxes in between.
                side = max(x0, x1) + 0.9
                route = MplPath([(x0 + 0.7, y0), (side, y0), (side, y1), (x1 + 0.7, y1)],
                                [MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO, MplPath.LINETO])
                arrow = FancyArrowPatch(path=route, arrowstyle="-|>", mutation_scale=8,
                                        linewidth=0.6, color="#555555")
            elif y0 - y1 > 1:
                # from a side branch: straight down its own column, then across
                end = x1 + (0.7 if x0 > x1 else -0.7)
                route = MplPath([(x0, y0 - 0.33), (x0, y1), (end, y1)],
                                [MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO])
                arrow = FancyArrowPatch(path=route, arrowstyle="-|>", mutation_scale=8,
                                        linewidth=0.6, color="#555555")
            else:
                arrow = FancyArrowPatch((x0, y0 - 0.33), (x1, y1 + 0.33), arrowstyle="-|>",
                                        mutation_scale=8, linewidth=0.6, color="#555555")
            ax.add_patch(arrow)
    hidden = len(graph.node) - len(nodes)
    if hidden:
        ax.text(0, -last - 0.8, f"... and {hidden} more nodes", ha="center", fontsize=9)
    xs = [x for x, _ in position] or [0]
    ax.set_xlim(min(min(xs), -1.6) - 1, max(max(xs), 1.6) + 1)
    ax.set_ylim(-total_layers - 1, 0.8)
    ax.set_title(f"{title}\n{len(graph.node)} nodes", fontsize=11)
    ax.axis("off")


def draw_graph(models, *, max_nodes: int = 200, layer_height: float = 0.42):
    """Draw the node graph of one or more models with matplotlib, side by side.

    A static stand-in for Netron where a browser cannot reach the kernel
    (JupyterHub, a remote machine, CI): one box per node, labelled with its op
    type (and what a fused node absorbed), arrows for the tensors between
    nodes; weights are left out. All panels share one vertical scale, so a
    graph with fewer layers is visibly shorter.

    Args:
        models: a path or ModelProto, or a dict label -> path/ModelProto.
        max_nodes: draw at most this many nodes per graph (the rest are counted).
        layer_height: inches per layer of the graph.

    Returns:
        The matplotlib Figure.

    Example:
        >>> draw_graph({"original": "artifacts/resnet18.onnx",
        ...             "extended": "artifacts/resnet18.extended.onnx"})  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if not isinstance(models, dict):
        models = {Path(models).name if isinstance(models, (str, Path)) else "model": models}
    if not models:
        raise ValueError("draw_graph() needs at least one model")
    loaded = {label: _load(model) for label, model in models.items()}
    depth = max(max(_layers(m.graph)[0][:max_nodes], default=0) + 1 for m in loaded.values())
    figure, axes = plt.subplots(1, len(loaded), squeeze=False,
                                figsize=(3.2 * len(loaded), min(layer_height * (depth + 2) + 0.6, 60)))
    for ax, (label, model) in zip(axes[0], loaded.items()):
        _draw_one(ax, model, label, max_nodes, depth)
    figure.tight_layout()
    return figure
