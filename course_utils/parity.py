"""Parity statistics: how far apart are two sets of outputs, and is that within tolerance?

Covers: :func:`compare_outputs` (per output: largest absolute and relative
error, where the worst element is, pass/fail under explicit ``rtol``/``atol``),
its rows (:class:`OutputComparison`) and :class:`ParityReport`, and the default
tolerances. Does not cover: running the models (``verify.py``).

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

import math
import numbers
from dataclasses import dataclass, field

from .errors import InvalidArgumentError
from .formatting import format_table

__all__ = ["compare_outputs", "check_tolerances", "convert_to_numpy", "ParityReport", "OutputComparison",
           "DEFAULT_RTOL", "DEFAULT_ATOL"]

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
        lines = [header, *format_table(table[0], table[1:], align="<" * len(table[0]), gap="  ")]
        lines += [f"warning: {text}" for text in self.warnings] + [self.verdict()]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython shows the table
        printer.text(str(self))


def _sci(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1e}"


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value


def convert_to_numpy(value):
    """A numpy array of a tensor (any device), an array, or a nested list."""
    import numpy as np

    if hasattr(value, "detach"):  # a torch.Tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _as_named(values, names) -> list[tuple[str, object]]:
    if isinstance(values, dict):
        return [(str(k), convert_to_numpy(v)) for k, v in values.items()]
    if not isinstance(values, (list, tuple)):
        values = [values]
    names = list(names or [])
    default = ["output"] if len(values) == 1 else [f"output_{i}" for i in range(len(values))]
    names = names + default[len(names):]
    return [(names[i], convert_to_numpy(v)) for i, v in enumerate(values)]


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


def check_tolerances(rtol, atol) -> None:
    """Refuse a negative, infinite or NaN tolerance (NaN would let every comparison pass).

    Raises:
        InvalidArgumentError: either tolerance is not a finite number >= 0.
    """
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value) or value < 0:
            raise InvalidArgumentError(f"tolerances must be finite numbers >= 0, got "
                                       f"{name}={value!r}; e.g. rtol={DEFAULT_RTOL:g}, "
                                       f"atol={DEFAULT_ATOL:g} (the defaults)")


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
    check_tolerances(rtol, atol)
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
