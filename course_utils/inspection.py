"""Inspecting an ONNX file: summarize it for people.

Covers: :func:`summarize_model`: the checker's verdict, shape inference, inputs and
outputs with shapes and dtypes, opset and IR version, an op-type histogram, the
parameter count and the file size, for code and for ``python -m course_utils
inspect``. Does not cover: reading the file and its errors (``onnx_files.py``),
running the model (see ``verify.py``) or drawing it
(see ``netron_view.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .formatting import format_size
from .onnx_files import count_ops, list_external_data, load_onnx_file, model_size_bytes
from .options import path_arg

__all__ = ["summarize_model", "ModelSummary", "TensorInfo", "element_type_name"]

@dataclass
class TensorInfo:
    """Name, element type and shape of one graph input or output.

    ``shape`` holds ints for fixed sizes, strings for named dynamic sizes
    (``dim_param``, e.g. ``"batch"``) and None for unnamed unknown sizes.
    """

    name: str
    dtype: str
    shape: list

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"


def _tensor_info(value_info) -> TensorInfo:
    import onnx

    kind = value_info.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorInfo(value_info.name, kind or "unknown", [])
    dtype = element_type_name(value_info.type.tensor_type.elem_type)
    tensor_type = value_info.type.tensor_type
    shape = []
    for dim in tensor_type.shape.dim:
        kind = dim.WhichOneof("value")
        shape.append(dim.dim_value if kind == "dim_value" else
                     dim.dim_param if kind == "dim_param" else None)
    return TensorInfo(value_info.name, dtype, shape)


def element_type_name(elem_type: int) -> str:
    """numpy's name of an ONNX element type (``float32``), else ONNX's (``bfloat16``), else
    ``"unknown element type N"`` for a number no ONNX type has (a damaged or future file)."""
    import onnx

    try:
        dtype = str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        try:
            dtype = onnx.TensorProto.DataType.Name(elem_type).lower()
        except ValueError:
            return f"unknown element type {elem_type}"
    return {"object": "string"}.get(dtype, dtype)


@dataclass
class ModelSummary:
    """What :func:`summarize_model` found; ``str(summary)`` is a readable text.

    Attributes:
        name: the file name (or the graph's name for an in-memory model).
        file_size: bytes on disk, external weights files included (None in memory).
        ir_version: the ONNX file-format version.
        opsets: operator-set version per domain (``"ai.onnx"`` is the default domain).
        producer: the tool that wrote the file, e.g. ``"pytorch 2.14.1"``.
        inputs, outputs: :class:`TensorInfo` per graph input / output.
        op_counts: op type -> number of nodes, most frequent first.
        node_count: all nodes, those inside subgraphs included.
        parameter_count: elements of the initializers except int64 ones (those
            are shapes and axes, such as a Reshape's target shape, not weights;
            int8 weights of quantized models do count). Exporters fold BatchNorm into convolutions, so this can
            differ from PyTorch's ``sum(p.numel() for p in model.parameters())``.
        checker: "ok", or the message of ``onnx.checker.check_model(full_check=True)``.
        inferred_values: how many intermediate tensors shape inference typed.
    """

    name: str
    file_size: int | None
    ir_version: int
    opsets: dict
    producer: str
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    op_counts: dict = field(default_factory=dict)
    node_count: int = 0
    parameter_count: int = 0
    checker: str = "ok"
    inferred_values: int = 0

    @property
    def opset(self) -> int:
        """The version of the default (``ai.onnx``) operator set."""
        return self.opsets.get("ai.onnx", 0)

    @property
    def dynamic_dims(self) -> list[str]:
        """Names of the symbolic dimensions of the inputs, e.g. ``["batch"]``."""
        names = [d for t in self.inputs for d in t.shape if isinstance(d, str)]
        return list(dict.fromkeys(names))

    def __str__(self) -> str:
        size = "in memory" if self.file_size is None else format_size(self.file_size)
        opsets = ", ".join(f"{d} {v}" for d, v in self.opsets.items())
        ops = ", ".join(f"{op} {n}" for op, n in self.op_counts.items())
        lines = [
            f"model       {self.name} ({size}), produced by {self.producer or 'unknown'}",
            f"format      IR version {self.ir_version}, opset {opsets}",
            f"checker     {self.checker}",
            *[f"input       {t}" for t in self.inputs],
            *[f"output      {t}" for t in self.outputs],
            f"parameters  {self.parameter_count:,}",
            f"nodes       {self.node_count} ({ops})",
            f"shapes      {self.inferred_values} intermediate tensors typed by shape inference",
        ]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython shows the text, not the fields
        printer.text(str(self))


_INT64 = 7  # onnx.TensorProto.INT64: shapes and axes


def _run_checker(model, path: Path | None, file_size: int | None) -> str:
    """``check_model(full_check=True)``'s verdict as "ok" or "failed: <first line>"."""
    import onnx

    target, full = model, True
    if path is not None and list_external_data(model):
        if file_size is not None and file_size < 2**31:
            # Shape inference reads constant inputs (e.g. a Reshape's shape) from the
            # tensors themselves, so external weights must be in memory.
            target = load_onnx_file(path)
        else:
            target, full = str(path), False  # over protobuf's 2 GB: the checker reads the path
    try:
        onnx.checker.check_model(target, full_check=full)
        return "ok"
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        return "failed: " + str(error).strip().splitlines()[0]
    except UnicodeDecodeError:  # the checker's message quotes a name that is not UTF-8
        return "failed: the file holds names that are not UTF-8 text (a damaged file?)"
    except (ValueError, TypeError, RuntimeError, KeyError, IndexError) as error:
        # The checker's own code tripping over a damaged file (an element type no ONNX type
        # has...) is its verdict on the file too.
        lines = str(error).strip().splitlines() or [type(error).__name__]
        return f"failed: {lines[0][:200]}"


def summarize_model(path_or_proto) -> ModelSummary:
    """Summarize an ONNX model: format, checker verdict, I/O, ops, parameters, size.

    Args:
        path_or_proto: an ``.onnx`` path or an ``onnx.ModelProto``.

    Returns:
        A :class:`ModelSummary`; ``print(summary)`` gives a readable text.

    Raises:
        FileNotFoundError, ValueError: the file is missing or unusable (see
            :func:`load_onnx_file`).

    Example:
        >>> summary = summarize_model("artifacts/resnet18.onnx")  # doctest: +SKIP
        >>> summary.inputs[0].shape, summary.opset  # doctest: +SKIP
        (['batch', 3, 224, 224], 20)
    """
    import onnx

    if isinstance(path_or_proto, onnx.ModelProto):
        model, path = path_or_proto, None
        name, file_size = model.graph.name or "model", None
    else:
        path = Path(path_or_proto)
        model = load_onnx_file(path, load_weights=False)  # sizes come from dims, not data
        name = path.name
        file_size = model_size_bytes(path)
    checker = _run_checker(model, path, file_size)
    initializer_names = {t.name for t in model.graph.initializer}
    try:
        # Exporters also list their weights in value_info; those are not intermediates.
        inferred = sum(v.name not in initializer_names
                       for v in onnx.shape_inference.infer_shapes(model).graph.value_info)
    except Exception:  # a broken model must still get a summary, not a traceback
        inferred = 0
    counts = count_ops(model)
    return ModelSummary(
        name=name,
        file_size=file_size,
        ir_version=model.ir_version,
        opsets={(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        # Old exporters list initializers as inputs too; they are weights, not inputs.
        inputs=[_tensor_info(v) for v in model.graph.input if v.name not in initializer_names],
        outputs=[_tensor_info(v) for v in model.graph.output],
        op_counts=dict(counts.most_common()),
        node_count=sum(counts.values()),
        parameter_count=int(sum(math.prod(t.dims) for t in model.graph.initializer
                                if t.data_type != _INT64)),
        checker=checker,
        inferred_values=inferred,
    )


def _cli_inspect(args) -> int:
    summary = summarize_model(args.model)
    print(summary)
    return 0 if summary.checker == "ok" else 1


def add_cli(subparsers) -> None:
    """Register ``python -m course_utils inspect MODEL.onnx``."""
    parser = subparsers.add_parser(
        "inspect", help="summarize an ONNX file (I/O, opset, ops, parameters, checker)",
        description="Print a summary of an ONNX model; exit 1 if the ONNX checker rejects it.")
    parser.add_argument("model", type=path_arg("MODEL"), help="path of the .onnx file")
    parser.set_defaults(func=_cli_inspect)
