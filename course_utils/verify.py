"""Verification: does the ONNX file compute what the PyTorch model computes?

Covers: :func:`verify_model`, which runs PyTorch (the source of truth) and ONNX
Runtime, optionally also onnx's reference evaluator, over several batch sizes,
in the spirit of Polygraphy's ``run --onnxrt`` comparisons; :func:`check_feed`,
which checks a feed against a session's inputs and lists what the model
expects; the ``verify`` CLI. Does not cover: the comparison statistics and the
tolerances (``parity.py``), making the file (``export.py``), describing it
(``inspection.py``) or timing it (``benchmark.py``).
"""
from __future__ import annotations

import difflib
import math

from .errors import CourseError, InvalidArgumentError
from .export import load_model_spec
from .onnx_files import load_onnx_file
from .options import add_number, number_list, path_arg
from .parity import (DEFAULT_ATOL, DEFAULT_RTOL, OutputComparison, ParityReport,
                     check_tolerances, compare_outputs, convert_to_numpy)
from .providers import make_session
from .sessions import fair_session_options

__all__ = ["verify_model", "check_feed", "SessionError"]

#: The largest random input verify builds (1 GiB of float32).
MAX_RANDOM_ELEMENTS = 2**28


class SessionError(CourseError, RuntimeError):
    """ONNX Runtime (or the reference evaluator) refused a file: an unknown op, a bad graph."""


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def _run(runner, feed, path):
    """``runner.run(None, feed)``, with a failure inside the runtime as one clear error."""
    reference = type(runner).__module__.startswith("onnx.reference")
    try:
        return runner.run(None, feed)
    except Exception as error:  # the feed was checked: the graph itself fails on it
        if reference:  # pure Python: any exception is an op it cannot run on this file
            raise _runtime_error(error, "onnx's reference evaluator", path) from None
        if not type(error).__module__.startswith("onnxruntime"):
            raise
        raise _runtime_error(error, "ONNX Runtime", path) from None


def _runtime_error(error: BaseException, what: str, path) -> SessionError:
    """A runtime's own exception, as one line that names the file and the next step."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300].rstrip(". ")
    if what.startswith("onnx's reference"):
        step = ("it runs the standard ONNX ops only (not ONNX Runtime's com.microsoft ones): "
                "leave out --reference (runtimes=('onnxruntime',)) for such files")
    else:
        step = ("check the file with `python -m course_utils inspect` (the ONNX checker names "
                "unknown ops and bad graphs), then re-export it with a supported opset")
    return SessionError(f"{what} cannot run {path}: {first}; {step}")


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
            raise InvalidArgumentError(f"input {arg.name!r} has a dynamic size besides the batch "
                             f"({_describe_inputs([arg])}); pass example inputs with inputs=[...]")
        dtype = _expected_dtype(arg.type)
        try:
            np.dtype(dtype)
        except TypeError:  # sequences, maps, optional types: no random array fits them
            raise InvalidArgumentError(f"input {arg.name!r} has type {arg.type}, which random "
                                       "inputs cannot fill; pass example inputs with "
                                       "inputs=[...]") from None
        if math.prod(dims[1:]) > MAX_RANDOM_ELEMENTS:
            raise InvalidArgumentError(
                f"input {arg.name!r} of the file is {_describe_inputs([arg])}: one sample holds "
                f"{math.prod(dims[1:]):,} values, more than the {MAX_RANDOM_ELEMENTS:,} verify "
                "builds (a damaged file, or a size exported by mistake?); check the file with "
                "`python -m course_utils inspect`, or pass real inputs with inputs=[...]")
        shape = [batch] + dims[1:] if dims else []
        if math.prod(shape) > MAX_RANDOM_ELEMENTS:
            raise InvalidArgumentError(f"a random input {arg.name!r} of shape {tuple(shape)} "
                                       f"would hold {math.prod(shape):,} values; choose smaller "
                                       "batch sizes (CLI: --batch-sizes 1,2,8)")
        if dtype.startswith("float"):
            feed[arg.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feed[arg.name] = rng.integers(0, 2, shape).astype(dtype)
    return feed


#: ONNX element types that numpy, PyTorch and ONNX Runtime's Python API all hold as they are
#: (float, float16, double, the integers, bool): the ones a comparison can use.
_COMPARABLE_TYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
                     7: "int64", 9: "bool", 10: "float16", 11: "float64", 12: "uint32",
                     13: "uint64"}


def _check_comparable(proto, path, random_inputs: bool) -> None:
    """Refuse a file whose outputs (and inputs, when verify makes them up) are not tensors
    numpy and PyTorch both hold."""
    from .inspection import element_type_name

    graph = proto.graph
    if not graph.output:
        raise InvalidArgumentError(f"{path} has no outputs: there is nothing to compare; export "
                                   "the model again (its forward must return a tensor)")
    weights = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in weights] if random_inputs else []
    for role, values in (("input", inputs), ("output", graph.output)):
        instead = ("which random inputs cannot fill; pass example inputs with "
                   "verify_model(..., inputs=[...])" if role == "input" else
                   "which verify cannot compare with PyTorch's outputs; compare it by hand")
        for value in values:
            kind = value.type.WhichOneof("value")
            if kind != "tensor_type":
                found = {"sequence_type": "a sequence of tensors", "map_type": "a map",
                         "optional_type": "an optional value",
                         "sparse_tensor_type": "a sparse tensor"}.get(kind, "of no known type")
                raise InvalidArgumentError(f"{role} {value.name!r} of {path} is {found}, not a "
                                           f"tensor, {instead}")
            dims = value.type.tensor_type.shape.dim
            if any(d.WhichOneof("value") == "dim_value" and d.dim_value < 0 for d in dims):
                raise InvalidArgumentError(
                    f"{role} {value.name!r} of {path} has a negative size in its shape, which no "
                    "tensor has: the file is damaged; export the model again")
            elem = value.type.tensor_type.elem_type
            if elem not in _COMPARABLE_TYPES:
                raise InvalidArgumentError(
                    f"{role} {value.name!r} of {path} has the element type "
                    f"{element_type_name(elem)}, {instead} (verify takes float, integer and "
                    "bool tensors, which numpy and PyTorch both hold; a model can cast to "
                    "float32 before its output)")


def _make_session(onnx_path, providers):
    import torch

    # Matched thread counts, no spinning: ORT's idle workers would otherwise slow
    # the PyTorch runs in this same process.
    options = fair_session_options(torch.get_num_threads())
    try:
        session = make_session(str(onnx_path), prefer=providers or ["CPUExecutionProvider"],
                               options=options)
        for arg in [*session.get_inputs(), *session.get_outputs()]:
            arg.name, arg.shape, arg.type  # noqa: B018 (each is decoded from UTF-8 on access)
        return session
    except CourseError:
        raise
    except UnicodeDecodeError:  # ORT's message, or a name, is not UTF-8
        raise SessionError(f"ONNX Runtime cannot run {onnx_path}: the file holds names or "
                           "dimensions that are not UTF-8 text (a damaged file?); export or copy "
                           "it again") from None
    except Exception as error:  # onnxruntime's own types (Fail, InvalidGraph, NotImplemented...)
        if not type(error).__module__.startswith("onnxruntime"):
            raise
        raise _runtime_error(error, "ONNX Runtime", onnx_path) from None


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


    check_tolerances(rtol, atol)  # before any model is built: NaN would pass everything
    unknown = set(runtimes) - {"onnxruntime", "reference"}
    if unknown:
        raise InvalidArgumentError(f"unknown runtime(s) {sorted(unknown)}; "
                                   "choose from 'onnxruntime', 'reference'")
    proto = load_onnx_file(onnx_path)  # one clear error for missing/empty/truncated files
    _check_comparable(proto, onnx_path, random_inputs=inputs is None)
    if isinstance(model, str):
        model = load_model_spec(model)
    model.eval()
    session = _make_session(onnx_path, providers)
    evaluator = None
    if "reference" in runtimes:
        from onnx.reference import ReferenceEvaluator

        try:
            evaluator = ReferenceEvaluator(proto)
        except (NotImplementedError, ValueError, TypeError, KeyError, RuntimeError) as error:
            raise _runtime_error(error, "onnx's reference evaluator", onnx_path) from None
    out_names = [o.name for o in session.get_outputs()]
    in_args = session.get_inputs()
    if inputs is not None:
        given = [convert_to_numpy(x)
                 for x in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
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
        try:
            with torch.no_grad():
                expected = _flatten(model(*[torch.from_numpy(v) for v in feed.values()]))
        except Exception as error:  # whatever the module raises, the file's inputs do not fit it
            shapes = ", ".join(f"{name}: {tuple(v.shape)}" for name, v in feed.items())
            raise InvalidArgumentError(
                f"the PyTorch model fails on the file's inputs ({shapes}): "
                f"{_first_line(error)}; is it the model {onnx_path} was exported from? Give the same spec as to "
                "`export`") from None
        if not any(isinstance(value, torch.Tensor) for value in expected):
            raise InvalidArgumentError(
                f"the PyTorch model's forward returned {'None' if expected == [None] else 'no tensor'}"
                f", so there is nothing to compare with the file's outputs "
                f"({', '.join(out_names)}); make forward return the tensor(s) the model computes")
        if "onnxruntime" in runtimes:
            report += compare_outputs(expected, _run(session, feed, onnx_path), rtol=rtol, atol=atol,
                                      names=out_names, runtime="onnxruntime", batch=batch)
        if evaluator is not None:
            report += compare_outputs(expected, _run(evaluator, feed, onnx_path), rtol=rtol, atol=atol,
                                      names=out_names, runtime="reference", batch=batch)
    return report


#: The largest batch size --batch-sizes takes (a random batch is built for each).
_MAX_BATCH = 4096


def _cli_verify(args) -> int:
    runtimes = ("onnxruntime", "reference") if args.reference else ("onnxruntime",)
    report = verify_model(args.model, args.spec, batch_sizes=args.batch_sizes, rtol=args.rtol,
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
    parser.add_argument("model", type=path_arg("MODEL"), help="path of the .onnx file")
    parser.add_argument("spec", help="torchvision:<name> or package.module:factory")
    add_number(parser, "--rtol", kind=float, low=0, default=DEFAULT_RTOL, help="relative tolerance")
    add_number(parser, "--atol", kind=float, low=0, default=DEFAULT_ATOL, help="absolute tolerance")
    parser.add_argument("--batch-sizes", default=(1, 2, 8), metavar="B,B,...",
                        type=number_list("--batch-sizes", 1, _MAX_BATCH, example="1,2,8",
                                         hint="choose smaller batch sizes"),
                        help=f"comma-separated batch sizes, each from 1 to {_MAX_BATCH} "
                             "(default 1,2,8)")
    parser.add_argument("--reference", action="store_true",
                        help="also run onnx's ReferenceEvaluator (slow for large models)")
    parser.set_defaults(func=_cli_verify)
