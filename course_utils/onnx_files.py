"""Reading ONNX files: one loader with one clear error, the op histogram and the size on disk.

Covers: :func:`load_onnx_file` (every module and check that parses an ``.onnx``
file goes through it, so a missing, empty, truncated or foreign file always
gets the same explanation), :func:`load_model_proto` (a path or a ModelProto),
:func:`count_ops` (the one op histogram) and :func:`model_size_bytes` (the
file plus its external weights). Does not cover: summarising a model for
people (``inspection.py``) or changing it (``graph_opt.py``, ``export.py``).
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from .errors import CourseError, MissingFileError
from .paths import FolderGivenError, input_file, read_bytes

__all__ = ["load_onnx_file", "load_model_proto", "count_ops", "model_size_bytes",
           "list_external_data", "external_data_paths", "external_data_tensors", "FolderGivenError",
           "OnnxFileError"]


class OnnxFileError(CourseError, ValueError):
    """A file is there but is not a usable ONNX model (empty, truncated, foreign)."""


# Standard-domain names; ops of any other domain keep their domain in count_ops.
_DEFAULT_DOMAINS = ("", "ai.onnx")

_EXPORT_HINT = "python -m course_utils export torchvision:resnet18 model.onnx"


def _describe_unparsable(data: bytes) -> str:
    """Say what a file that does not parse as ONNX most likely is."""
    head = data[:200]
    if head.startswith(b"PK\x03\x04"):
        return ("is a zip archive, not an ONNX model; PyTorch saves checkpoints (.pt/.pth) "
                "this way. Load the checkpoint in PyTorch and export it with "
                "torch.onnx.export")
    if head.startswith(b"version https://git-lfs"):
        return ("is a Git LFS pointer, not the model itself; run `git lfs pull` to fetch "
                "the real file")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""  # (a cut in the middle of a multi-byte character lands here too)
    if text.strip() and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0][:60]
        kind = "an HTML page (a failed download?)" if "<html" in text.lower() else "a text file"
        return (f"is {kind}, not a binary ONNX model (it starts with {first!r}); "
                f"export the model again ({_EXPORT_HINT})")
    if data[:1] == b"\x08":
        # ONNX writers put ir_version (field 1, varint, tag byte 0x08) first.
        return (f"starts like an ONNX model but ends early at {len(data):,} bytes: it is "
                "truncated (an interrupted export, copy or download); export or copy it again")
    return (f"is not an ONNX model: its {len(data):,} bytes do not parse as an ONNX protobuf; "
            f"export the model again ({_EXPORT_HINT})")


def load_onnx_file(path, *, load_weights: bool = True, refuse_escaping: bool = False):
    """Read an ``.onnx`` file, raising one clear error if it is unusable.

    Args:
        path: the ``.onnx`` file.
        load_weights: also read weights stored in a separate file beside the
            model (external data). With False, only the graph is read.
        refuse_escaping: with ``load_weights=False``, still refuse external data
            named outside the model's folder (for a caller that hands the path to
            ONNX Runtime, which reads the weights itself).

    Returns:
        The ``onnx.ModelProto``.

    Raises:
        MissingFileError: no file at ``path``, or its external weights file is
            missing (a ``FileNotFoundError`` too).
        FolderGivenError: ``path`` is a folder (an ``IsADirectoryError`` too).
        OnnxFileError: the file is empty, truncated, or not an ONNX model (a
            ``ValueError`` too).
    """
    import onnx
    from google.protobuf.message import DecodeError

    data = _read_regular_file(path)  # the path as given: "" is refused, not read as "."
    path = Path(path)
    if not data:
        raise OnnxFileError(f"{path.name} is empty (0 bytes): the export or copy that wrote it "
                         "failed or was interrupted; export the model again")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError:
        raise OnnxFileError(f"{path.name} {_describe_unparsable(data)}") from None
    if not model.HasField("graph") or model.ir_version == 0:
        raise OnnxFileError(f"{path.name} {_describe_unparsable(data)}")
    if not model.opset_import:
        raise OnnxFileError(f"{path.name} has a graph but no opset_import, which every ONNX "
                         "writer puts at the end of the file: it is truncated; export or "
                         "copy it again")
    if load_weights:
        _load_external_weights(model, path)
    elif refuse_escaping:  # the graph alone: no weights file need be there, none may lie elsewhere
        for location in list_external_data(model):
            _refuse_escaping(location, path)
    return model


#: protobuf cannot parse a message over 2 GiB: no single .onnx file is larger.
MAX_ONNX_BYTES = 2**31


def _read_regular_file(path) -> bytes:
    """The bytes of a regular file of at most MAX_ONNX_BYTES (``paths.py`` checks what it is)."""
    try:
        path = input_file(path, "ONNX model", missing_hint="check the path, or create the model "
                          f"first, e.g. {_EXPORT_HINT}")
    except MissingFileError as error:
        if os.path.islink(path):  # a dangling link: the door's words say so
            raise
        folder = Path(path).parent
        nearby = sorted(p.name for p in folder.glob("*.onnx")) if folder.is_dir() else []
        also = f" (.onnx files in that folder: {', '.join(nearby[:10])})" if nearby else ""
        raise MissingFileError(f"no file at {path}{also}; check the path, or create the "
                               f"model first, e.g. {_EXPORT_HINT}") from None
    size = path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise OnnxFileError(f"{path.name} has {size:,} bytes, more than the 2 GiB a "
                            "single ONNX file can hold; such models keep their weights in "
                            "external data (export with external_data=True)")
    return read_bytes(path, "ONNX model", max_bytes=MAX_ONNX_BYTES, checked=True)


def external_data_tensors(model) -> list:
    """Every tensor of ``model`` whose data lies in another file (external data), wherever it is.

    The walk visits every message the model holds, not a list of known places: initializers
    and sparse initializers (their values and indices), node attributes (one tensor, a list,
    sparse ones), subgraphs of If, Loop and Scan at any depth, model-local functions and
    training information. A tensor counts when it says its data is external or names any
    external-data entry (ONNX Runtime reads the former, onnx the latter).
    """
    from onnx import TensorProto

    found, stack = [], [model]
    while stack:
        message = stack.pop()
        if isinstance(message, TensorProto):
            if message.data_location == TensorProto.EXTERNAL or len(message.external_data):
                found.append(message)
            continue
        for field, value in message.ListFields():
            if field.type != field.TYPE_MESSAGE:
                continue
            if getattr(field, "is_repeated", None) or getattr(field, "label", 0) == 3:  # LABEL_REPEATED
                stack.extend(value)
            else:
                stack.append(value)
    return found


def list_external_data(model) -> list[str]:
    """File names of the external weights files the model refers to (from any tensor)."""
    locations = []
    for tensor in external_data_tensors(model):
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if location not in locations:
            locations.append(location)
    return locations


def _refuse_escaping(location: str, path) -> None:
    """Refuse an external-data location that leaves the model's folder (absolute, ``..``)."""
    relative = Path(location)
    if relative.is_absolute() or ".." in relative.parts or "\0" in location or not location:
        raise OnnxFileError(
            f"{Path(path).name} names its external weights {location!r}, a place outside "
            "its folder; ONNX external data must sit beside the model: re-export it, or "
            "save it with onnx.save(..., location='<name>.data')")


def external_data_paths(model, path: Path) -> dict[str, Path]:
    """Each external-data location of ``model`` (read from ``path``) and its file, all checked.

    Raises:
        OnnxFileError: a location that leaves the model's folder (absolute, or with ``..``),
            or that is not a regular file.
        MissingFileError: a location with no file beside the model.
    """
    folder = Path(path).parent
    found = {}
    for location in list_external_data(model):
        _refuse_escaping(location, path)
        target = folder / location
        try:
            exists = target.exists()
            inside = exists and target.is_file() and folder.resolve() in target.resolve().parents
        except (OSError, RuntimeError):  # a name too long, a link loop
            exists = inside = False
        if not exists and not os.path.islink(target):
            raise MissingFileError(
                f"{Path(path).name} keeps its weights in a separate file {location!r}, which is not "
                f"beside it in {folder.name or '.'}/; copy {location} next to {Path(path).name}, "
                "or re-export with external_data=False to get a single file")
        if not inside:
            raise OnnxFileError(f"{Path(path).name}'s external weights {location!r} are not a "
                                f"regular file inside {folder.name or '.'}/; re-export the model")
        found[location] = target
    return found


def _load_external_weights(model, path: Path) -> None:
    from onnx.external_data_helper import load_external_data_for_model

    external_data_paths(model, path)
    try:
        load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError) as error:  # offsets or lengths past the end of the file
        raise OnnxFileError(f"{path.name}'s external weights cannot be read ({error}); the data "
                            "file is probably truncated or belongs to another export: copy both "
                            "files again") from None


def load_model_proto(model):
    """The ``onnx.ModelProto`` of a path (graph only, weights not read) or a ModelProto.

    Raises:
        MissingFileError, OnnxFileError: see :func:`load_onnx_file`.
    """
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    return load_onnx_file(model, load_weights=False)


def _op_name(node) -> str:
    return node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"


def _count_graph(graph, counts: Counter) -> None:
    for node in graph.node:
        counts[_op_name(node)] += 1
        for attribute in node.attribute:  # subgraphs of If / Loop / Scan
            for sub in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
                _count_graph(sub, counts)


def count_ops(model) -> Counter:
    """Count a model's nodes by op type, the nodes of subgraphs included.

    Subgraphs (the branches of ``If``, the bodies of ``Loop`` and ``Scan``) are
    counted because their nodes run too; a model without control flow (any
    CNN) has none, so the counts are those of the main graph. Ops outside the
    standard ONNX domain carry their domain, so ONNX Runtime's own ops stand
    out: ``com.microsoft.FusedConv``, ``com.microsoft.nchwc.Conv``.

    Args:
        model: a path or an ``onnx.ModelProto``.

    Example:
        >>> count_ops("artifacts/resnet18.onnx").most_common(2)  # doctest: +SKIP
        [('Conv', 20), ('Relu', 17)]
    """
    counts: Counter = Counter()
    _count_graph(load_model_proto(model).graph, counts)
    return counts


def model_size_bytes(path) -> int:
    """Bytes on disk of an ONNX model, its external weights file(s) included.

    Raises:
        MissingFileError, OnnxFileError: see :func:`load_onnx_file`.
    """
    path = Path(path)
    model = load_onnx_file(path, load_weights=False)
    return path.stat().st_size + sum(target.stat().st_size
                                     for target in external_data_paths(model, path).values())
