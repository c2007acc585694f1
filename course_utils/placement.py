"""Which provider runs which node: the assignment a session records and a profile's time.

Covers: the nodes each provider took in a session (``get_provider_graph_assignment_info``,
recorded when the session config entry :data:`RECORD_ASSIGNMENT` is "1"), the kernels and
time per provider in one run of a profile (the profiler's per-node ``provider`` field),
and both joined into one table (``python -m course_utils providers --placement MODEL.onnx``
prints it for one run: ``providers.measure_placement``). Does not cover: the time per
operator type (``profiling.py``), registering providers (``devices.py``), nor making the
session (``providers.py``).

``session.get_providers()`` lists the providers a session registered, not where its nodes
run: a provider may take every node, some, or none. In a profile, a provider that compiles
a subgraph (OpenVINO, TensorRT) shows one kernel for all the nodes it took, named after
the provider (``OpenVINOExecutionProvider_<hash>_0``); the CPU provider shows one kernel
per node, named after the node with its operator type as ``op_name``. The OpenVINO provider
also adds OpenVINO's own operations, each with the precision it ran in (:func:`kernel_precisions`).
:func:`profile_events` writes events of that form for runs one describes (the checks of notebook
01 call students' functions with them).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .errors import InvalidArgumentError
from .formatting import format_table

__all__ = ["RECORD_ASSIGNMENT", "ProviderShare", "assigned_nodes", "placement_from_profile",
           "kernel_precisions", "placement_table", "format_placement", "profile_events"]

#: The session config entry that makes a session keep which provider took which node.
RECORD_ASSIGNMENT = "session.record_ep_graph_assignment_info"


@dataclass(frozen=True)
class ProviderShare:
    """What one provider ran in one run of a profile."""

    kernels: int  # kernel calls: one per CPU node, one per compiled subgraph
    ms: float
    share: float  # of the run's kernel time, 0..1
    kernel_names: tuple[str, ...]  # the profile's op_name of each kernel, in run order


def assigned_nodes(session) -> dict[str, list[str]]:
    """``{provider: [op type of each node it took]}`` for a session that recorded it.

    Raises:
        InvalidArgumentError: the session was made without :data:`RECORD_ASSIGNMENT`.
    """
    try:
        recorded = session.get_session_options().get_session_config_entry(RECORD_ASSIGNMENT)
    except RuntimeError:  # ONNX Runtime's answer for an entry never set
        recorded = None
    subgraphs = session.get_provider_graph_assignment_info() if recorded == "1" else []
    if not subgraphs:
        raise InvalidArgumentError(f"this session recorded no node assignment; create it with "
                                   f"options.add_session_config_entry({RECORD_ASSIGNMENT!r}, '1')")
    nodes: dict[str, list[str]] = {}
    for subgraph in subgraphs:
        nodes.setdefault(subgraph.ep_name, []).extend(n.op_type for n in subgraph.get_nodes())
    return nodes


def _is_kernel(event) -> bool:
    return (isinstance(event, dict) and event.get("cat") == "Node"
            and str(event.get("name", "")).endswith("_kernel_time"))


def placement_from_profile(events: list, run: int = -1) -> dict[str, ProviderShare]:
    """Kernels and time per provider in one run of an ONNX Runtime profile.

    Args:
        events: the profile's events (the JSON list ``session.end_profiling()`` wrote).
        run: which ``model_run`` counts (default the last: the first run of a provider
            that compiles includes its compilation).

    Returns:
        ``{provider: ProviderShare}``, the provider that ran longest first.

    Raises:
        InvalidArgumentError: the events hold no such run, or no kernel in it.
    """
    runs = sorted((e for e in events if isinstance(e, dict) and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    try:
        chosen = runs[run]
    except IndexError:
        raise InvalidArgumentError(f"the profile holds {len(runs)} runs; run {run} is not one of "
                                   "them (was profiling on, and did the session run?)") from None
    start, end = chosen["ts"], chosen["ts"] + chosen["dur"]
    kernels = sorted((e for e in events if _is_kernel(e) and start <= e["ts"] <= end),
                     key=lambda e: e["ts"])
    if not kernels:
        raise InvalidArgumentError("that run of the profile holds no kernel events")
    total = sum(e["dur"] for e in kernels) or 1
    per_provider: dict[str, list] = {}
    for event in kernels:
        args = event.get("args", {})
        per_provider.setdefault(args.get("provider", "?"), []).append(event)
    shares = {provider: ProviderShare(len(found), sum(e["dur"] for e in found) / 1e3,
                                      sum(e["dur"] for e in found) / total,
                                      tuple(e.get("args", {}).get("op_name", "?") for e in found))
              for provider, found in per_provider.items()}
    return dict(sorted(shares.items(), key=lambda item: -item[1].ms))


def kernel_precisions(events: list) -> dict[str, int]:
    """``{precision: kernels}`` that OpenVINO reports it ran, from a profile's events.

    The OpenVINO provider adds one ``Kernel`` event per OpenVINO operation to ONNX Runtime's
    profile; its ``ov_exec_type`` ends with the precision the kernel ran in
    (``brgconv_avx512_f32``, ``..._bf16``, ``..._I8``). Empty for other providers.
    """
    found: Counter = Counter()
    for event in events:
        kind = event.get("args", {}).get("ov_exec_type") if isinstance(event, dict) else None
        if event.get("cat") == "Kernel" and isinstance(kind, str) and "_" in kind:
            found[kind.rsplit("_", 1)[1].lower()] += 1
    return dict(found.most_common())


def placement_table(nodes: dict[str, list[str]], shares: dict[str, ProviderShare]) -> list[dict]:
    """One row per provider: nodes, op types, kernels, ms and share (a provider in either)."""
    rows = []
    for provider in [*shares, *(p for p in nodes if p not in shares)]:
        share = shares.get(provider)
        rows.append({"provider": provider, "nodes": len(nodes.get(provider, [])),
                     "op_types": dict(Counter(nodes.get(provider, [])).most_common()),
                     "kernels": share.kernels if share else 0,
                     "ms": share.ms if share else 0.0, "share": share.share if share else 0.0})
    return rows


def format_placement(rows: list[dict], max_types: int = 6) -> str:
    """The rows of :func:`placement_table` as a fixed-width table."""
    cells = []
    for r in rows:
        types = [f"{op} x{n}" for op, n in r["op_types"].items()]
        if len(types) > max_types + 1:  # "+1 more" would take the place of that one
            types = types[:max_types] + [f"+{len(types) - max_types} more"]
        cells.append([r["provider"], str(r["nodes"]), str(r["kernels"]), f"{r['ms']:.2f}",
                      f"{100 * r['share']:.0f}%", ", ".join(types)])
    return "\n".join(format_table(["provider", "nodes", "kernels", "ms", "time", "op types"],
                                  cells, align="<>>>><", gap="  ", rule="-"))


def profile_events(runs, openvino_ops: int = 0, order: str = "written", start: int = 2000) -> list:
    """Events as ONNX Runtime's profiler writes them, for runs of the given kernels.

    Args:
        runs: one list per ``model_run``, of ``(provider, op_name, microseconds)`` per kernel.
            A kernel whose ``op_name`` starts with its provider's name is a compiled subgraph
            (one kernel for many nodes, as OpenVINO's); the CPU provider's ``op_name`` is the
            node's operator type.
        openvino_ops: OpenVINO's own operations added inside each compiled kernel, as the
            plugin writes them (category ``Kernel``, no ``provider`` in their args).
        order: "written" (each run's kernels, then the run itself, as ONNX Runtime writes
            them) or "by_ts" (every event sorted by its start).
        start: the first run's start, in microseconds.

    Returns:
        The list of event dicts (``cat``, ``name``, ``ts``, ``dur``, ``args``, ...).
    """
    events = [{"cat": "Session", "name": "model_loading_uri", "ph": "X", "ts": 3, "dur": 400,
               "pid": 7, "tid": 7, "args": {}},
              {"cat": "Session", "name": "session_initialization", "ph": "X", "ts": 420,
               "dur": start - 500, "pid": 7, "tid": 7, "args": {}}]
    ts = start
    for run in runs:
        run_start, ts = ts, ts + 9
        for index, (provider, op_name, us) in enumerate(run):
            compiled = op_name.startswith(provider)
            name = f"{provider}_{op_name}_{index}" if compiled else f"node_{op_name.lower()}_{index}"
            events.append({"cat": "Node", "name": f"{name}_kernel_time", "ph": "X", "ts": ts,
                           "dur": us, "pid": 7, "tid": 7,
                           "args": {"op_name": op_name, "provider": provider,
                                    "node_index": str(index)}})
            for op in range(openvino_ops if compiled else 0):  # inside the kernel, in its time
                events.append({"cat": "Kernel", "name": f"OV::op_{op}", "ph": "X",
                               "ts": ts + op * us // (openvino_ops + 1), "dur": us // (openvino_ops + 1),
                               "pid": -1, "tid": 40, "args": {
                                   "ov_node_type": "Convolution", "ov_exec_type": "jit_avx512_f32",
                                   "parent_ort_event_name": f"{name}_kernel_time"}})
            ts += us + 5
        events.append({"cat": "Session", "name": "SequentialExecutor::Execute", "ph": "X",
                       "ts": run_start + 2, "dur": ts - run_start - 4, "pid": 7, "tid": 7, "args": {}})
        events.append({"cat": "Session", "name": "model_run", "ph": "X", "ts": run_start,
                       "dur": ts - run_start, "pid": 7, "tid": 7, "args": {}})
        ts += 60
    if order == "by_ts":
        events.sort(key=lambda event: event["ts"])
    return events
