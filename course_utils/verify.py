"""Parity: does the ONNX file compute what the PyTorch model computes?

Covers: :func:`compare_outputs` (per output: largest absolute and relative
error, where the worst element is, pass/fail under explicit ``rtol``/``atol``)
and its :class:`ParityReport`; :func:`verify_model`, which runs PyTorch (the
source of truth) and ONNX Runtime, optionally also onnx's reference evaluator,
over several batch sizes, in the spirit of Polygraphy's ``run --onnxrt``
comparisons; :func:`check_feed`, which checks a feed against a session's inputs
and lists what the model expects; the ``verify`` CLI. Does not cover: making
the file (``export.py``), describing it (``inspection.py``) or timing it
(``benchmark.py``).

An element passes when ``|actual - expected| <= atol + rtol * |expected|``
(numpy's ``allclose`` rule, with PyTorch as ``expected``). Why the defaults are
``rtol = atol = 1e-3``, from measurements (ONNX Runtime 1.31 against torch 2.14,
float32, CPU): on this course's 2-core machine the largest difference on
outputs of size ~1 is 1e-6 to 4e-6 for resnet18, convnext_tiny and
mobilenet_v3_small at batch 1 to 32, and 9e-6 (batch 1) to 2e-5 (batch 3) for
efficientnet_b0; about 0.1 % of the elements are near zero and differ by up to
4e-2 *relatively*, so ``rtol`` alone would fail a correct export; ``atol`` must
carry those. On other hardware batched outputs can differ by ~1e-3
absolute while batch 1 agrees to ~1e-6 (kernels chosen per batch size, TF32 or
fused kernels on GPUs), so a tighter default would fail correct exports there
and teach students to ignore failures. 1e-3 is still 100x below what real
export mistakes produce (other weights, a missing normalisation, a transposed
layout: errors of the size of the outputs themselves). The report always shows
the measured errors, so use ``atol=1e-5`` for a strict check on CPU.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field

__all__ = ["compare_outputs", "verify_model", "check_feed", "ParityReport",
           "OutputComparison", "DEFAULT_RTOL", "DEFAULT_ATOL"]

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-3


@dataclass
class OutputComparison:
    """One output of one run compared with the reference (one row of the report)."""

    output: str
    runtime: str
    batch: int | None
    shape: tuple
    max_abs: float
    max_rel: float
    worst_index: tuple
    expected: float
    actual: float
    mismatched: int
    size: int
    scale: float
    passed: bool
    note: str = ""


@dataclass
class ParityReport:
    """What :func:`compare_outputs` or :func:`verify_model` found; ``print()`` it for a table.

    Attributes:
        rows: one :class:`OutputComparison` per output (per runtime and batch size).
        rtol, atol: the tolerances used.
        reference: what the candidates were compared with.
    """

    rows: list = field(default_factory=list)
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    reference: str = "PyTorch"

    @property
    def passed(self) -> bool:
        """True when there is at least one comparison and every one is within tolerance."""
        return bool(self.rows) and all(row.passed for row in self.rows)

    @property
    def max_abs(self) -> float:
        """The largest absolute error over all rows (nan if a row could not be compared)."""
        values = [row.max_abs for row in self.rows]
        return max(values, key=lambda v: math.inf if math.isnan(v) else v) if values else 0.0

    @property
    def worst(self) -> OutputComparison | None:
        """The failed row with the most elements out of tolerance, else the largest error."""
        if not self.rows:
            return None
        failed = [row for row in self.rows if not row.passed]
        if failed:
            return max(failed, key=lambda r: (r.mismatched, _nan_last(r.max_abs)))
        return max(self.rows, key=lambda r: _nan_last(r.max_abs))

    @property
    def warnings(self) -> list[str]:
        """Reasons to distrust a pass, e.g. reference outputs all within atol of zero."""
        scales = [row.scale for row in self.rows if not math.isnan(row.scale)]
        if scales and max(scales) <= 10 * self.atol:
            return [f"the reference outputs are tiny (largest |value| {max(scales):.1e} <= "
                    f"10 * atol), so this comparison can hardly fail; compare trained weights "
                    f"or real inputs, or lower atol"]
        return []

    def __add__(self, other: "ParityReport") -> "ParityReport":
        if (self.rtol, self.atol) != (other.rtol, other.atol):
            raise ValueError("cannot combine reports made with different tolerances")
        return ParityReport(self.rows + other.rows, self.rtol, self.atol, self.reference)

    def verdict(self) -> str:
        """One line: PASS/FAIL with the worst case."""
        if not self.rows:
            return "FAIL: nothing was compared"
        bad = [row for row in self.rows if not row.passed]
        if not bad:
            return (f"PASS: {len(self.rows)} of {len(self.rows)} outputs within tolerance "
                    f"(largest abs error {self.max_abs:.1e})")
        w = self.worst
        where = ", ".join(p for p in (w.runtime, f"batch {w.batch}" if w.batch else "",
                                       f"output {w.output!r}") if p)
        if not w.size:
            detail = w.note
        else:
            allowed = self.atol + self.rtol * abs(w.expected)
            error = abs(w.actual - w.expected)
            detail = (f"at {list(w.worst_index)} expected {w.expected:.6g}, got {w.actual:.6g}"
                      + (f": abs error {error:.1e} > allowed {allowed:.1e}"
                         if math.isfinite(error) else "")
                      + f"; {w.mismatched:,} of {w.size:,} elements out of tolerance"
                      + (f"; {w.note}" if w.note else ""))
        return f"FAIL: {len(bad)} of {len(self.rows)} outputs out of tolerance; worst: {where} {detail}"

    def __str__(self) -> str:
        header = (f"parity vs {self.reference}: pass if |actual - expected| <= atol + rtol * "
                  f"|expected| (rtol={self.rtol:.0e}, atol={self.atol:.0e})")
        table = [("runtime", "batch", "output", "shape", "max abs", "max rel",
                  "worst element: expected -> actual", "result")]
        for r in self.rows:
            worst = (f"{list(r.worst_index)}: {r.expected:.6g} -> {r.actual:.6g}"
                     if r.size else r.note[:48])
            table.append((r.runtime, "-" if r.batch is None else str(r.batch), r.output,
                          str(tuple(r.shape)), _sci(r.max_abs), _sci(r.max_rel), worst,
                          "pass" if r.passed else "FAIL"))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = [header] + ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                            for row in table]
        lines += [f"warning: {text}" for text in self.warnings] + [self.verdict()]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython shows the table
        printer.text(str(self))


def _sci(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1e}"


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value


def _to_numpy(value):
    import numpy as np

    if hasattr(value, "detach"):  # a torch.Tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _as_named(values, names) -> list[tuple[str, object]]:
    if isinstance(values, dict):
        return [(str(k), _to_numpy(v)) for k, v in values.items()]
    if not isinstance(values, (list, tuple)):
        values = [values]
    names = list(names or [])
    default = ["output"] if len(values) == 1 else [f"output_{i}" for i in range(len(values))]
    names = names + default[len(names):]
    return [(names[i], _to_numpy(v)) for i, v in enumerate(values)]


def _compare_one(name, expected, actual, rtol, atol, runtime, batch) -> OutputComparison:
    import numpy as np

    def failed(note, shape=()):
        return OutputComparison(name, runtime, batch, tuple(shape), math.nan, math.nan, (),
                                math.nan, math.nan, 0, 0, math.nan, False, note)

    if expected is None or actual is None:
        missing = "candidate" if actual is None else "reference"
        return failed(f"missing: the {missing} has no output {name!r}")
    if expected.shape != actual.shape:  # never broadcast: (1,) vs (8,) is a bug, not a match
        return failed(f"shape {tuple(actual.shape)} != expected {tuple(expected.shape)}",
                      expected.shape)
    e = expected.astype(np.float64)
    a = actual.astype(np.float64)
    if e.size == 0:
        return OutputComparison(name, runtime, batch, e.shape, 0.0, 0.0, (), 0.0, 0.0, 0, 0,
                                0.0, True)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - e)
        excess = diff - (atol + rtol * np.abs(e))
        bad = ~(excess <= 0) & ~(a == e)  # NaN fails; equal infinities pass
        rel = np.where(e != 0, diff / np.where(e != 0, np.abs(e), 1.0), 0.0)
    # The worst element: the one furthest out of tolerance, or the largest difference.
    score = (np.where(bad, np.nan_to_num(excess, nan=np.inf), -np.inf) if bad.any()
             else np.nan_to_num(diff, nan=0.0))
    index = np.unravel_index(int(np.argmax(score)), e.shape)
    finite = np.isfinite(diff)
    return OutputComparison(
        output=name, runtime=runtime, batch=batch, shape=e.shape,
        max_abs=float(diff[finite].max()) if finite.any() else math.nan,
        max_rel=float(rel[finite].max()) if finite.any() else math.nan,
        worst_index=tuple(int(i) for i in index), expected=float(e[index]),
        actual=float(a[index]), mismatched=int(bad.sum()), size=int(e.size),
        scale=float(np.nanmax(np.abs(e))) if np.isfinite(e).any() else math.nan,
        passed=not bad.any(),
        note="" if finite.all() else f"{int((~finite).sum()):,} elements are NaN or inf")


def compare_outputs(expected, actual, *, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
                    names=None, runtime: str = "onnxruntime", batch: int | None = None,
                    reference: str = "PyTorch") -> ParityReport:
    """Compare a candidate's outputs with the reference's, element by element.

    Args:
        expected: the reference outputs (PyTorch): an array or tensor, a list or
            tuple of them, or a dict ``{output name: array}``.
        actual: the candidate outputs (e.g. ``session.run(None, feed)``), same form.
        rtol, atol: an element passes when ``|actual - expected| <= atol + rtol * |expected|``.
        names: output names for list inputs (e.g. ``[o.name for o in session.get_outputs()]``).
        runtime: the candidate's name in the report.
        batch: the batch size, shown in the report.
        reference: the reference's name in the report.

    Returns:
        A :class:`ParityReport`: ``.passed``, ``.rows`` with max abs/rel error and
        the worst element per output, and a table via ``print(report)``. Shape
        mismatches, missing outputs and NaNs are failed rows, never broadcast.

    Example:
        >>> import numpy as np
        >>> report = compare_outputs(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
        >>> report.passed, report.rows[0].worst_index
        (False, (1,))
    """
    if rtol < 0 or atol < 0:
        raise ValueError(f"tolerances must be >= 0, got rtol={rtol}, atol={atol}")
    ref = _as_named(expected, names)
    cand = _as_named(actual, names)
    if isinstance(expected, dict) and isinstance(actual, dict):
        cand_map = dict(cand)
        pairs = [(n, e, cand_map.pop(n, None)) for n, e in ref]
        pairs += [(n, None, a) for n, a in cand_map.items()]
    else:
        count = max(len(ref), len(cand))
        ref += [(cand[i][0], None) for i in range(len(ref), count)]
        cand += [(ref[i][0], None) for i in range(len(cand), count)]
        pairs = [(r[0], r[1], c[1]) for r, c in zip(ref, cand)]
    rows = [_compare_one(n, e, a, rtol, atol, runtime, batch) for n, e, a in pairs]
    return ParityReport(rows, rtol, atol, reference)


_ORT_TYPES = {"float": "float32", "double": "float64", "string": "str"}


def _expected_dtype(type_string: str) -> str:
    inner = type_string.removeprefix("tensor(").removesuffix(")")
    return _ORT_TYPES.get(inner, inner)


def _describe_inputs(inputs) -> str:
    parts = []
    for arg in inputs:
        dims = ", ".join(str(d) if d is not None else "?" for d in arg.shape)
        parts.append(f"{arg.name}: {_expected_dtype(arg.type)}[{dims}]")
    return "; ".join(parts)


def check_feed(session, feed) -> None:
    """Check a feed against a session's inputs, with one clear error listing what it expects.

    ONNX Runtime's own errors name one problem at a time and not always the
    expected inputs; this names the wrong input, says what was expected, and
    lists every input of the model.

    Args:
        session: an ``onnxruntime.InferenceSession`` (anything with ``get_inputs()``).
        feed: the dict ``{input name: numpy array}`` you would pass to ``session.run``.

    Raises:
        TypeError: ``feed`` is not a dict, a value is not a numpy array, or has the wrong dtype.
        ValueError: a missing or unknown input name, the wrong number of
            dimensions, a wrong fixed size, or one named size given two values.

    Example:
        >>> check_feed(session, {"input": x})  # doctest: +SKIP
        ValueError: unknown input name 'input' (did you mean 'x'?); the model expects x: float32[batch, 3, 224, 224]
    """
    import numpy as np

    inputs = session.get_inputs()
    expects = f"the model expects {_describe_inputs(inputs)}"
    if not isinstance(feed, dict):
        raise TypeError(f"the feed must be a dict {{input name: numpy array}}, got "
                        f"{type(feed).__name__}; {expects}")
    known = [arg.name for arg in inputs]
    for name in feed:
        if name not in known:
            by_lower = {k.lower(): k for k in known}  # "X" for "x" is a typo too
            close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.5)
            hint = f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
            raise ValueError(f"unknown input name {name!r}{hint}; {expects}")
    missing = [name for name in known if name not in feed]
    if missing:
        raise ValueError(f"missing input {', '.join(map(repr, missing))}; {expects}")
    sizes: dict[str, tuple[str, int]] = {}
    for arg in inputs:
        value = feed[arg.name]
        if hasattr(value, "detach"):
            raise TypeError(f"input {arg.name!r} is a torch.Tensor; ONNX Runtime takes numpy "
                            f"arrays: pass tensor.detach().cpu().numpy(); {expects}")
        if not isinstance(value, np.ndarray):
            raise TypeError(f"input {arg.name!r} is a {type(value).__name__}, not a numpy array; "
                            f"convert it with np.asarray(value, dtype=...); {expects}")
        want = _expected_dtype(arg.type)
        got = "str" if value.dtype.kind in "OU" else str(value.dtype)
        if got != want:
            raise TypeError(f"input {arg.name!r} has dtype {got} but the model expects {want}; "
                            f"convert it with .astype(np.{want}); {expects}")
        shape = list(arg.shape)
        if value.ndim != len(shape):
            hint = " (a single sample? add the batch dimension with x[None])" \
                if value.ndim == len(shape) - 1 else ""
            raise ValueError(f"input {arg.name!r} has shape {value.shape} ({value.ndim} "
                             f"dimensions) but the model expects {len(shape)}{hint}; {expects}")
        for axis, (dim, size) in enumerate(zip(shape, value.shape)):
            if isinstance(dim, int) and dim != size:
                what = " (the batch size is fixed in this file: export it with a dynamic " \
                       "batch dimension)" if axis == 0 else ""
                raise ValueError(f"input {arg.name!r} has size {size} in dimension {axis} but "
                                 f"the model expects {dim}{what}; {expects}")
            if isinstance(dim, str):
                first = sizes.setdefault(dim, (arg.name, size))
                if first[1] != size:
                    raise ValueError(f"dimension {dim!r} is {first[1]} in input {first[0]!r} "
                                     f"but {size} in input {arg.name!r}; it must be the same; "
                                     f"{expects}")


def _flatten(outputs) -> list:
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        return [leaf for item in outputs for leaf in _flatten(item)]
    return [outputs]


def _random_feed(inputs, batch: int, rng) -> dict:
    import numpy as np

    feed = {}
    for arg in inputs:
        dims = list(arg.shape)
        if any(not isinstance(d, int) for d in dims[1:]):
            raise ValueError(f"input {arg.name!r} has a dynamic size besides the batch "
                             f"({_describe_inputs([arg])}); pass example inputs with inputs=[...]")
        dtype = _expected_dtype(arg.type)
        shape = [batch] + dims[1:] if dims else []
        if dtype.startswith("float"):
            feed[arg.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feed[arg.name] = rng.integers(0, 2, shape).astype(dtype)
    return feed


def _make_session(onnx_path, providers):
    import onnxruntime as ort
    import torch

    from .providers import make_session

    options = ort.SessionOptions()
    # Matched thread counts, no spinning: ORT's idle workers would otherwise slow
    # the PyTorch runs in this same process.
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return make_session(str(onnx_path), prefer=providers or ["CPUExecutionProvider"],
                        options=options)


def verify_model(onnx_path, model, *, batch_sizes=(1, 2, 8), inputs=None,
                 rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
                 runtimes=("onnxruntime",), providers=None, seed: int = 0) -> ParityReport:
    """Run PyTorch and the ONNX file on the same inputs and compare every output.

    Args:
        onnx_path: the ``.onnx`` file.
        model: the PyTorch module it was exported from, or its spec (see
            :func:`course_utils.export.load_model_spec`; specs get seeded
            weights, so they match a file exported from the same spec).
        batch_sizes: random float inputs of these batch sizes, shaped after the
            file's inputs. A file whose batch is fixed fails the other sizes.
        inputs: real example inputs instead (an array or a list, one per model
            input, in order); ``batch_sizes`` is then ignored.
        rtol, atol: see :func:`compare_outputs` and the module notes on the defaults.
        runtimes: ``"onnxruntime"`` and/or ``"reference"`` (onnx's pure-Python
            ``ReferenceEvaluator``: slow, fine for small models).
        providers: ONNX Runtime providers in priority order (default CPU).
        seed: seed of the random inputs.

    Returns:
        A :class:`ParityReport` with one row per runtime, batch size and output.

    Example:
        >>> report = verify_model("artifacts/resnet18.onnx", "torchvision:resnet18")  # doctest: +SKIP
        >>> report.passed  # doctest: +SKIP
        True
    """
    import numpy as np
    import torch

    from .export import load_model_spec
    from .inspection import load_onnx_file

    unknown = set(runtimes) - {"onnxruntime", "reference"}
    if unknown:
        raise ValueError(f"unknown runtime(s) {sorted(unknown)}; choose from 'onnxruntime', 'reference'")
    proto = load_onnx_file(onnx_path)  # one clear error for missing/empty/truncated files
    if isinstance(model, str):
        model = load_model_spec(model)
    model.eval()
    session = _make_session(onnx_path, providers)
    evaluator = None
    if "reference" in runtimes:
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(proto)
    out_names = [o.name for o in session.get_outputs()]
    in_args = session.get_inputs()
    if inputs is not None:
        given = [_to_numpy(x) for x in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
        batch = int(given[0].shape[0]) if given and given[0].ndim else None
        feeds = [(batch, dict(zip([a.name for a in in_args], given)))]
    else:
        rng = np.random.default_rng(seed)
        feeds = [(b, _random_feed(in_args, b, rng)) for b in batch_sizes]
    report = ParityReport([], rtol, atol)
    for batch, feed in feeds:
        try:
            check_feed(session, feed)
        except (TypeError, ValueError) as error:
            note = str(error).split("; the model expects")[0]
            rows = [OutputComparison(n, r, batch, (), math.nan, math.nan, (), math.nan, math.nan,
                                     0, 0, math.nan, False, note) for r in runtimes for n in out_names]
            report += ParityReport(rows, rtol, atol)
            continue
        with torch.no_grad():
            expected = _flatten(model(*[torch.from_numpy(v) for v in feed.values()]))
        if "onnxruntime" in runtimes:
            report += compare_outputs(expected, session.run(None, feed), rtol=rtol, atol=atol,
                                      names=out_names, runtime="onnxruntime", batch=batch)
        if evaluator is not None:
            report += compare_outputs(expected, evaluator.run(None, feed), rtol=rtol, atol=atol,
                                      names=out_names, runtime="reference", batch=batch)
    return report


def _cli_verify(args) -> int:
    try:
        batch_sizes = tuple(int(b) for b in args.batch_sizes.split(",") if b.strip())
    except ValueError:
        batch_sizes = ()
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"--batch-sizes {args.batch_sizes!r} is not a list of positive "
                         "integers; write e.g. 1,2,8")
    runtimes = ("onnxruntime", "reference") if args.reference else ("onnxruntime",)
    report = verify_model(args.model, args.spec, batch_sizes=batch_sizes, rtol=args.rtol,
                          atol=args.atol, runtimes=runtimes)
    print(report)
    return 0 if report.passed else 1


def add_cli(subparsers) -> None:
    """Register ``python -m course_utils verify MODEL.onnx SPEC``."""
    parser = subparsers.add_parser(
        "verify", help="compare an ONNX file with its PyTorch model (exit 1 if out of tolerance)",
        description="Run the PyTorch model named by SPEC (seeded weights, as `export` uses) and "
                    "the ONNX file on random inputs of several batch sizes; print max abs/rel "
                    "errors and the worst element per output; exit 0 within tolerance, else 1.")
    parser.add_argument("model", help="path of the .onnx file")
    parser.add_argument("spec", help="torchvision:<name> or package.module:factory")
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                        help=f"relative tolerance (default {DEFAULT_RTOL:g})")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                        help=f"absolute tolerance (default {DEFAULT_ATOL:g})")
    parser.add_argument("--batch-sizes", default="1,2,8",
                        help="comma-separated batch sizes (default 1,2,8)")
    parser.add_argument("--reference", action="store_true",
                        help="also run onnx's ReferenceEvaluator (slow for large models)")
    parser.set_defaults(func=_cli_verify)
