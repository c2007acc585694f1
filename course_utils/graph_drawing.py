"""A static picture of ONNX graphs, drawn with matplotlib.

Covers: :func:`draw_graph`, one box per node laid out by longest-path layer,
for places where a browser cannot reach the kernel (JupyterHub, a remote
machine, CI). Does not cover: serving Netron (``netron_view.py``) nor the
optimisations themselves (``graph_opt.py``).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from .graph_opt import name_fusion
from .onnx_files import load_model_proto

__all__ = ["draw_graph"]


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


def _wrap_op(op: str, width: int = 12) -> str:
    """A long CamelCase op type on two lines, split at the capital nearest its middle."""
    capitals = [i for i, c in enumerate(op) if c.isupper() and i > 0]
    if len(op) <= width or not capitals:
        return op
    cut = min(capitals, key=lambda i: abs(i - len(op) / 2))
    return op[:cut] + "\n" + op[cut:]


def _node_label(node) -> str:
    fusion = name_fusion(node)
    if fusion:
        return node.op_type + "\n+" + "+".join(fusion.split("+")[1:])
    return _wrap_op(node.op_type)


_BOXED_LABELS: list = []  # (text, box) pairs of the figure being drawn


def _fit_labels(figure, pairs, margin: float = 0.9) -> None:
    """Shrink each label whose rendered width exceeds ``margin`` of its box's width."""
    renderer = figure.canvas.get_renderer()
    for text, box in pairs:
        text_width = text.get_window_extent(renderer).width
        box_width = box.get_window_extent(renderer).width
        if text_width > margin * box_width > 0:
            text.set_fontsize(text.get_fontsize() * margin * box_width / text_width)


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
        key = label.split("\n+")[0]
        color = "#eeeeee" if kind == "io" else colors.setdefault(
            key, palette[sum(map(ord, key)) % len(palette)])
        box = ax.add_patch(FancyBboxPatch((x - 0.7, y - 0.33), 1.4, 0.66, boxstyle="round,pad=0.02",
                                          facecolor=color, edgecolor="#333333", linewidth=0.6))
        # 8.5 pt: readable when the figure is shown at the notebook's width;
        # _fit_labels shrinks the ones too wide for their box ("BatchNormalization").
        text = ax.text(x, y, label, ha="center", va="center", fontsize=8.5, linespacing=0.95)
        _BOXED_LABELS.append((text, box))
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
    loaded = {label: load_model_proto(model) for label, model in models.items()}
    depth = max(max(_layers(m.graph)[0][:max_nodes], default=0) + 1 for m in loaded.values())
    figure, axes = plt.subplots(1, len(loaded), squeeze=False,
                                figsize=(3.2 * len(loaded), min(layer_height * (depth + 2) + 0.6, 60)))
    _BOXED_LABELS.clear()
    for ax, (label, model) in zip(axes[0], loaded.items()):
        _draw_one(ax, model, label, max_nodes, depth)
    figure.tight_layout()
    _fit_labels(figure, _BOXED_LABELS)  # after the layout: the boxes' final size on the page
    _BOXED_LABELS.clear()
    return figure
