"""Exporting PyTorch models to ONNX files, for notebooks that need a model and for the CLI.

Covers: turning a model spec (``torchvision:resnet18`` or
``package.module:factory``) into a module with reproducible weights, and
:func:`export_model`, a careful wrapper around ``torch.onnx.export`` that gives
the file a dynamic batch dimension, writes it atomically (nothing at the target
path when the export fails), checks the result and explains failures in a
sentence with the options. Does not cover: teaching the export itself
(notebook 02 shows the ``torch.onnx.export`` call), checking numbers against
PyTorch (see ``verify.py``) or describing the file (see ``inspection.py``).
"""
from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import io
import logging
import math
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path, PurePosixPath

from .errors import CourseError, InvalidArgumentError, MissingDependencyError
from .inspection import summarize_model
from .onnx_files import load_onnx_file
from .options import add_number, number_list, path_arg
from .paths import PathPlan, output_file

__all__ = ["export_model", "load_model_spec", "explain_export_errors", "ExportError", "ModelSpecError"]

log = logging.getLogger(__name__)

#: Seed used to initialise models built from a spec, so that ``export`` and a
#: later ``verify`` of the same spec (another process) see the same random weights.
SPEC_SEED = 0

#: The largest example input an export builds (1 GiB of float32): a bigger one is a typo.
MAX_EXAMPLE_ELEMENTS = 2**28


class ExportError(CourseError, RuntimeError):
    """The exporter could not turn the model into ONNX; the message says why and what to try."""


class ModelSpecError(CourseError, ValueError):
    """A model spec that is malformed or names no model; the message shows the valid forms."""


class ExampleInputError(InvalidArgumentError):
    """The model does not take the example input an export builds; ``cause`` says why in a
    few words, for callers (``bench``) whose own options differ from export's."""

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class ModelFactoryError(CourseError, TypeError):
    """A spec's factory that needs arguments or does not give a ``torch.nn.Module``."""


def load_model_spec(spec: str, *, seed: int = SPEC_SEED):
    """Build the PyTorch module a spec names, in eval mode, with seeded weights.

    Args:
        spec: ``"torchvision:<name>"`` (any name of
            ``torchvision.models.list_models()``, built with ``weights=None`` so
            nothing downloads) or ``"package.module:factory"``, where ``factory``
            is a module class, a function returning a module, or a module object.
        seed: the random weights are drawn with ``torch.manual_seed(seed)`` (the
            global RNG state is restored afterwards), so every call gives the
            same weights.

    Returns:
        The ``torch.nn.Module``, in eval mode.

    Raises:
        ModelSpecError: the spec is malformed or names no model (a ``ValueError``).
        MissingDependencyError: the module part cannot be imported (an ``ImportError``).
        ModelFactoryError: the factory needs arguments or does not give a
            ``torch.nn.Module`` (a ``TypeError``).

    Example:
        >>> model = load_model_spec("torchvision:resnet18")
        >>> type(model).__name__, model.training
        ('ResNet', False)
    """
    import torch

    if not isinstance(spec, str):
        raise ModelSpecError(f"a model spec is a string such as 'torchvision:resnet18', got a "
                             f"{type(spec).__name__}")
    _refuse_file_path(spec)
    source, sep, name = spec.partition(":")
    if not sep or not source or not name:
        hint = f"did you mean 'torchvision:{spec}'? " if spec.isidentifier() else ""
        raise ModelSpecError(f"model spec {spec!r} is not of the form 'torchvision:<name>' or "
                         f"'package.module:factory'; {hint}e.g. torchvision:resnet18 or "
                         "course_utils.digits:DigitsCNN")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if source == "torchvision":
            model = _build_torchvision(name)
        else:
            model = _build_from_factory(source, name)
    if not isinstance(model, torch.nn.Module):
        raise ModelFactoryError(f"{spec!r} gave a {type(model).__name__}, not a torch.nn.Module; the "
                        "factory must be a module class, a function returning a module, or a module")
    return model.eval()


#: What the name of a file that holds weights or a model ends with; a spec names code instead.
_MODEL_FILE_SUFFIXES = (".onnx", ".pt", ".pth", ".pkl", ".ckpt", ".safetensors", ".bin")


def _refuse_file_path(spec: str) -> None:
    """A spec written as a file path (``models/net.py:Net``, ``model.onnx``) gets its own words,
    instead of an import error that blames a module nobody meant."""
    source, sep, name = spec.rpartition(":")
    if not sep:
        source, name = spec, ""
    elif source == "torchvision":
        source, name = name, ""  # bench's --model NAME becomes torchvision:NAME
    if "/" not in source and "\\" not in source and not source.endswith(
            (".py", *(_MODEL_FILE_SUFFIXES if not name else ()))):
        if source.startswith(".") and name:
            raise ModelSpecError(f"{spec!r} names a module relative to no package; a spec names "
                                 "a module by its full import name, e.g. mypackage.models:Net "
                                 "(run the command from the folder that holds mypackage/)")
        return
    if source.endswith(_MODEL_FILE_SUFFIXES):
        raise ModelSpecError(
            f"{source!r} is a file, but a model spec names the code that builds a PyTorch model: "
            "torchvision:<name> or package.module:factory (e.g. course_utils.digits:DigitsCNN); "
            "a checkpoint is loaded inside such a factory, and an .onnx file is what export "
            "writes, not what it reads")
    module = PurePosixPath(source.replace("\\", "/"))
    module = module.with_suffix("") if module.name else module
    parts = [p for p in module.parts if p.strip("/.") and not p.endswith(":")]
    dotted = ".".join(parts) or "module"
    holder = (parts[0] + ("/" if len(parts) > 1 else ".py")) if parts else "the file"
    raise ModelSpecError(
        f"{spec!r} names a file path, but a spec names a module by its import name: run the "
        f"command from the folder that holds {holder} and write {dotted}:{name or 'factory'} "
        "(dots between packages, no .py)")


def _build_torchvision(name: str):
    import torchvision

    known = torchvision.models.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelSpecError(f"torchvision has no model {name!r}; {hint}see "
                         "torchvision.models.list_models() for all names")
    builder = torchvision.models.get_model_builder(name)
    kwargs = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs["weights_backbone"] = None  # detection/segmentation models: no backbone download
    with _no_downloads(f"torchvision:{name}"):
        try:
            return builder(**kwargs)
        except (CourseError, KeyboardInterrupt):
            raise
        except BaseException as error:
            raise ModelSpecError(f"torchvision could not build {name!r} with random weights "
                                 f"({_one_line(error)}); pick another model from "
                                 "torchvision.models.list_models()") from None


@contextlib.contextmanager
def _no_downloads(what: str):
    """Refuse any download while building a model: the course works offline."""
    import torch.hub

    def refuse(url, *args, **kwargs):
        raise ModelSpecError(f"building {what} tried to download {url}; the course never "
                             "downloads weights: use a spec whose factory builds the model "
                             "with weights=None (and weights_backbone=None)")

    original = torch.hub.download_url_to_file
    torch.hub.download_url_to_file = refuse
    try:
        yield
    finally:
        torch.hub.download_url_to_file = original


def _one_line(error: BaseException) -> str:
    """``Type: first line of the message``, cut to 200 characters."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def _where(error: BaseException) -> str:
    """`` at file.py:line`` of the innermost frame of a traceback, or nothing."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, SyntaxError) and error.filename:
        return f" at {error.filename}:{error.lineno}"
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _build_from_factory(module_name: str, attribute: str):
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        if error.name and not module_name.startswith(error.name) and error.name != module_name:
            raise MissingDependencyError(
                f"importing {module_name!r} needs {error.name!r}, which is not installed "
                f"({error}{_where(error)}); install it in this environment") from None
        raise MissingDependencyError(f"could not import {module_name!r} ({error}); check the spelling and "
                          "run from the folder that contains the package (or install it)") from None
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # the module's own code failed (or exited) while importing
        raise ModelSpecError(f"importing {module_name!r} raised {_one_line(error)}{_where(error)}; "
                             "fix that module (run `python -c 'import "
                             f"{module_name}'` to see the whole traceback)") from None
    target = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            names = sorted({n for n in [*dir(module), *getattr(module, "__all__", [])]
                            if not n.startswith("_")})
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ModelSpecError(f"{module_name} has no attribute {attribute!r}; {hint}"
                             "name a module class or a function that returns a module") from None
    import torch

    if isinstance(target, torch.nn.Module):
        return target
    if not callable(target):
        return target  # load_model_spec names the type it got
    try:
        signature = inspect.signature(target)
        signature.bind()
    except TypeError:
        raise ModelFactoryError(f"{module_name}:{attribute} needs arguments {signature}; a spec's factory "
                        "must be callable without arguments: write a small function that "
                        "builds the model and name that") from None
    except ValueError:
        pass  # builtins without a signature: just call them
    with _no_downloads(f"{module_name}:{attribute}"):
        try:
            return target()
        except (CourseError, KeyboardInterrupt):
            raise
        except BaseException as error:  # the factory's own code failed, or exited (SystemExit)
            raise ModelFactoryError(f"{module_name}:{attribute}() raised {_one_line(error)}"
                                    f"{_where(error)}; fix the factory so that it builds the "
                                    "model without arguments") from None


def _default_input_shape(spec_or_module) -> tuple[int, ...]:
    """(C, H, W) the model was made for, when it can be known; else a clear error."""
    if isinstance(spec_or_module, str) and spec_or_module.startswith("torchvision:"):
        from torchvision.models import get_model_weights

        # The weights' preprocessing names the crop size; no weights are downloaded.
        try:
            transforms = get_model_weights(spec_or_module.split(":", 1)[1]).DEFAULT.transforms()
        except (ValueError, KeyError, AttributeError, TypeError):
            transforms = None
        crop = getattr(transforms, "crop_size", None)
        if crop:
            return (3, crop[0], crop[0])
        raise InvalidArgumentError(f"{spec_or_module} names no input size (its preprocessing has "
                                   "no crop size); pass input_shape=(C, H, W) without the batch "
                                   "(CLI: --input-shape 3,224,224), and note that the export "
                                   "takes models with one tensor input only")
    module = spec_or_module if not isinstance(spec_or_module, str) else None
    shape = getattr(module, "input_shape", None)
    if shape is not None:
        return tuple(shape)
    size = getattr(module, "image_size", None)  # torchvision's VisionTransformer
    if isinstance(size, int):
        return (3, size, size)
    if module is not None and type(module).__module__.startswith("torchvision.models"):
        return (3, 224, 224)
    what = spec_or_module if isinstance(spec_or_module, str) else type(module).__name__
    raise InvalidArgumentError(f"cannot tell the input shape of {what}; pass input_shape=(C, H, W) "
                     "without the batch dimension (CLI: --input-shape 1,8,8)")


def _required_inputs(module) -> list[str]:
    """Names of the positional arguments of ``forward`` that have no default."""
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]


def _input_names(module, count: int) -> list[str]:
    params = [p for p in inspect.signature(module.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [p.name for p in params[:count]]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _explain_failure(error: BaseException, what: str, dynamo: bool, opset) -> str:
    """One paragraph: what failed, where in the model code, and the options."""
    text = _ANSI.sub("", str(error))
    summary = re.search(r"## Exception summary\s*\n\s*(.+)", text)
    cause = (summary.group(1) if summary else text.strip().splitlines()[0]).strip()
    cause = re.sub(r"^<class '[\w.]*?(\w+)'>", r"\1", cause)
    cause = re.split(r"\s+\((?:unhinted|Size-like)", cause)[0][:300]
    where = re.search(r'File "([^"]+)", line (\d+), in (\w+)\n\s+(.+)', text)
    at = ""
    if where:
        file, line, function, code = where.groups()
        # Code typed into a notebook lives in a temporary file whose name means nothing.
        place = (f"line {line} of a notebook cell" if "ipykernel" in file or "<ipython" in file
                 else f"{Path(file).name}:{line}")
        at = f" at {place}, in {function}: `{code.strip()}`"
    exporter = "the dynamo exporter (torch.export)" if dynamo else "the TorchScript exporter"
    if "data-dependent" in text or "GuardOnDataDependent" in text:
        problem = ("the model has data-dependent control flow: Python code branches on a "
                   "tensor's values, which cannot be recorded in a static graph")
        options = ("rewrite the branch with torch.where(...) or torch.cond(...) so both paths "
                   "are in the graph; or export with dynamo=False (CLI: --torchscript), whose "
                   "tracer keeps only the branch the example input takes, so verify other "
                   "inputs afterwards")
    elif "top-level keys must be the arg names" in text:
        problem = ("the keys of dynamic_shapes are not the names of the arguments of the "
                   "model's forward")
        options = ("key each entry by the name of forward's argument (inspect.signature(model.forward) "
                   "lists them), or give dynamic_shapes as a tuple with one entry per example input")
    elif "Constraints violated" in text or "specialized it to be a constant" in text:
        problem = ("the model's code fixes the batch size (e.g. torch.zeros(2, n) or "
                   "x.view(2, n) written with the example's batch size)")
        options = ("use size-agnostic code such as x.new_zeros(x.shape[0], n), x.flatten(1) or "
                   "x.view(x.shape[0], -1); or export with dynamic_batch=False (CLI: --static-batch)")
    else:
        problem = "an operation could not be exported"
        options = ("try another opset (opset=18..23; CLI: --opset N); try "
                   f"dynamo={not dynamo} (CLI: {'--torchscript' if dynamo else 'drop --torchscript'}); "
                   "or rewrite the operation named above with standard torch ops")
    opset_note = f" (opset {opset})" if opset else ""
    return (f"could not export {what} with {exporter}{opset_note}: {problem}.\n"
            f"  cause: {cause}{at}\n  options: {options}")


def explain_export_errors() -> bool:
    """In a notebook, show a failed ``torch.onnx.export`` as a few lines that say what to change.

    The exporter's own report is long and puts the useful line near its bottom; after this
    call the kernel shows the cause, the line of model code and the options instead (the
    cell still fails). The full report stays in the exception, ``error.__cause__`` included.
    Returns False, and changes nothing, outside IPython.

    Example:
        >>> explain_export_errors()  # in a notebook's setup cell  # doctest: +SKIP
        True
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    import torch

    def show(shell, etype, value, tb, tb_offset=None):
        dynamo = "torch.export" in str(value) or "dynamo" in type(value).__module__
        lines = [f"{etype.__name__}: {_explain_failure(value, 'the model', dynamo, None)}"]
        shell._showtraceback(etype, value, lines)
        return lines

    shell.set_custom_exc((torch.onnx.OnnxExporterError,), show)
    return True


def export_model(spec_or_module, out_path, *, example_batch: int = 2, input_shape=None,
                 dynamic_batch: bool = True, opset: int | None = None, dynamo: bool = True) -> Path:
    """Export a PyTorch model to a single ``.onnx`` file with a dynamic batch dimension.

    This wraps ``torch.onnx.export`` for notebooks and scripts that need a model
    file; notebook 02 teaches the call itself. The model takes one tensor input
    (the first argument of ``forward``, whose name the graph input gets); outputs
    are named ``output`` (or ``output_0``, ``output_1``...). The file is written
    atomically: if anything fails, nothing appears at ``out_path`` and an older
    file there is kept. Weights are stored inside the file (models over 2 GB, the
    protobuf limit, are not supported).

    Args:
        spec_or_module: a ``torch.nn.Module`` or a spec for :func:`load_model_spec`.
        out_path: where to write the ``.onnx`` file (folders are created).
        example_batch: batch size of the random example input used for tracing.
        input_shape: one sample's shape without the batch, e.g. ``(3, 224, 224)``;
            optional for torchvision models (their crop size is used).
        dynamic_batch: name dimension 0 of every input and output ``"batch"``
            so the file accepts any batch size.
        opset: the ``ai.onnx`` opset to target (None: the exporter's default).
        dynamo: True for the ``torch.export``-based exporter (the default since
            torch 2.9), False for the older TorchScript exporter.

    Returns:
        The path of the written file.

    Raises:
        ExportError: the exporter failed (the message names the cause, the line
            of model code when known, and the options), or the file lacks what
            was asked for (a dynamic batch, the opset).
        ModelSpecError, ModelFactoryError, MissingDependencyError, InvalidArgumentError:
            a bad spec or argument (also ``ValueError``, ``TypeError``, ``ImportError``).

    Example:
        >>> export_model("torchvision:resnet18", "artifacts/resnet18.onnx")  # doctest: +SKIP
        PosixPath('artifacts/resnet18.onnx')
    """
    import torch

    if example_batch < 1:
        raise InvalidArgumentError(f"example_batch must be at least 1, got {example_batch}")
    _check_opset(opset, dynamo)
    out_path = output_file(out_path, "ONNX file")  # before minutes of exporting
    module = load_model_spec(spec_or_module) if isinstance(spec_or_module, str) else spec_or_module
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module or a spec string, got {type(module).__name__}")
    what = spec_or_module if isinstance(spec_or_module, str) else type(module).__name__
    module.eval()
    required = _required_inputs(module)
    if len(required) > 1:
        raise ExampleInputError(
            f"{what}'s forward takes {len(required)} inputs ({', '.join(required)}); "
            "export_model exports models with one tensor input: call torch.onnx.export with a "
            "tuple of example inputs, or wrap the model in a module whose forward takes one",
            cause=f"its forward takes {len(required)} inputs ({', '.join(required)})")
    shape = tuple(input_shape) if input_shape is not None else _default_input_shape(spec_or_module)
    if example_batch * math.prod(shape) > MAX_EXAMPLE_ELEMENTS:
        raise InvalidArgumentError(
            f"an example input of shape {(example_batch, *shape)} has "
            f"{example_batch * math.prod(shape):,} values, more than the "
            f"{MAX_EXAMPLE_ELEMENTS:,} an export needs; check input_shape (one sample, without "
            "the batch; CLI: --input-shape) and example_batch (2 is enough)")
    example = torch.randn(example_batch, *shape, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            outputs = module(example)  # also tells how many outputs to name
    except (CourseError, KeyboardInterrupt):
        raise
    except Exception as error:  # whatever the model raises, the example does not fit it
        cause = f"it fails on an example input of shape {tuple(example.shape)} ({_one_line(error)})"
        raise ExampleInputError(f"{what} fails on an example input of shape "
                                f"{tuple(example.shape)} ({_one_line(error)}); check "
                                "input_shape, one sample's shape without the batch "
                                "(CLI: --input-shape)", cause=cause) from error
    except BaseException as error:  # SystemExit in forward: the CLI would end silently
        raise ExportError(f"{what}'s forward raised {_one_line(error)}{_where(error)} on an example "
                          "input; a model's code must not exit: remove that call") from None
    _check_outputs(outputs, what)
    n_out = len(outputs) if isinstance(outputs, (tuple, list)) else 1
    out_names = ["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]
    (in_name,) = _input_names(module, 1) or ["input"]
    kwargs: dict = dict(input_names=[in_name], output_names=out_names, opset_version=opset)
    if dynamo:
        kwargs.update(dynamo=True, external_data=False, verbose=False)
        if dynamic_batch:
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
    else:
        kwargs.update(dynamo=False)
        if dynamic_batch:
            kwargs["dynamic_axes"] = {name: {0: "batch"} for name in [in_name, *out_names]}

    out_path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".export-", dir=out_path.parent))
    try:
        tmp = workdir / out_path.name
        noise = io.StringIO()  # progress lines and graph dumps: logged at DEBUG level on failure
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(noise), \
                    contextlib.redirect_stderr(noise):
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's own notice
                torch.onnx.export(module, (example,), str(tmp), **kwargs)
        except (CourseError, KeyboardInterrupt):
            raise
        except Exception as error:  # the exporters raise many types; all mean "could not export"
            log.debug("exporter output:\n%s", noise.getvalue())
            raise ExportError(_explain_failure(error, what, dynamo, opset)) from error
        except BaseException as error:  # SystemExit raised by forward while it was traced
            raise ExportError(f"could not export {what}: its forward raised {_one_line(error)}"
                              f"{_where(error)} while the exporter ran it; a model's code must "
                              "not exit: remove that call") from None
        _check_exported(tmp, what, dynamic_batch, opset, dynamo)
        tmp.replace(out_path)  # atomic on one file system
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return out_path


def _opset_range(dynamo: bool) -> tuple[int, int]:
    try:
        from torch.onnx import _constants
        low, high = _constants.ONNX_MIN_OPSET, _constants.ONNX_MAX_OPSET
        if not dynamo:
            high = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", high)
    except (ImportError, AttributeError):  # torch moved them: the range of torch 2.9
        low, high = 7, 23 if dynamo else 20
    return low, high


def _check_opset(opset, dynamo: bool) -> None:
    """Refuse an opset no exporter of this torch writes, before the model is even built."""
    if opset is None:
        return
    low, high = _opset_range(dynamo)
    if isinstance(opset, bool) or not isinstance(opset, int) or not low <= opset <= high:
        exporter = "the dynamo exporter" if dynamo else "the TorchScript exporter (--torchscript)"
        raise InvalidArgumentError(f"opset {opset!r} is not one {exporter} of this torch writes "
                                   f"({low} to {high}); choose one in that range, or leave it out "
                                   "for the exporter's default")


def _check_outputs(outputs, what: str) -> None:
    """Refuse a forward whose result the exporter would turn into a graph without outputs."""
    import torch

    leaves, stack = [], [outputs]
    while stack:
        value = stack.pop()
        if isinstance(value, (tuple, list)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        else:
            leaves.append(value)
    if not any(isinstance(v, torch.Tensor) for v in leaves):
        found = "None" if outputs is None else f"a {type(outputs).__name__} without a tensor in it"
        raise ExportError(f"{what}'s forward returned {found}: an ONNX graph needs at least one "
                          "output tensor; make forward return the tensor(s) the model computes "
                          "(e.g. `return self.fc(x)`: a missing `return` gives None)")


def _check_exported(path: Path, what: str, dynamic_batch: bool, opset, dynamo: bool) -> None:
    """Refuse a file that lacks what was asked for, instead of letting it surprise later."""
    model = load_onnx_file(path, load_weights=False)
    if not model.graph.output:
        raise ExportError(f"the exporter wrote a graph without outputs for {what}: nothing of "
                          "what forward returns depends on its input or is a tensor; make "
                          "forward return the tensor(s) computed from its input")
    got = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and got != opset:
        raise ExportError(
            f"asked for opset {opset} but the exporter wrote opset {got} for {what}"
            + ("; the dynamo exporter has no implementations below opset 18 and its automatic "
               "conversion failed: use dynamo=False (CLI: --torchscript) for older opsets, or "
               "target opset 18 or newer" if dynamo else "; choose an opset the exporter supports"))
    if dynamic_batch:
        fixed = [(v.name, v.type.tensor_type.shape.dim[0].dim_value)
                 for v in model.graph.input
                 if v.type.tensor_type.shape.dim and
                 v.type.tensor_type.shape.dim[0].WhichOneof("value") != "dim_param"]
        if fixed:
            raise ExportError(
                f"the batch dimension of input {fixed[0][0]!r} came out fixed to {fixed[0][1]} "
                f"although a dynamic batch was asked for ({what}); the model's code probably "
                "uses the batch size as a number (e.g. torch.zeros(2, n) or x.view(2, n)); use "
                "size-agnostic code such as x.new_zeros(x.shape[0], n) or x.flatten(1), or "
                "export with dynamic_batch=False (CLI: --static-batch)")


def spec_source(spec: str) -> Path | None:
    """The source file of a ``package.module:factory`` spec's module, found without importing it
    (None for torchvision specs, or when it cannot be told)."""
    import importlib.util

    source, sep, _ = spec.partition(":")
    if not sep or not source or source == "torchvision":
        return None
    try:
        found = importlib.util.find_spec(source)  # imports parent packages, not the module
    except KeyboardInterrupt:
        raise
    except BaseException:  # a parent that does not import: load_model_spec says why, later
        return None
    origin = getattr(found, "origin", None)
    return Path(origin) if origin and os.path.isfile(origin) else None


#: The largest size of one dimension of --input-shape (a sample of 2**31 values is a typo).
_MAX_DIMENSION = 2**31 - 1


def _cli_export(args) -> int:
    plan = PathPlan()
    source = spec_source(args.spec)
    if source is not None:  # `export pkg.mod:f pkg/mod.py` would overwrite the model's own code
        plan.add_input(source, f"source of {args.spec}")
    out = plan.output_file(args.out, "ONNX file to write")
    path = export_model(args.spec, out, example_batch=args.example_batch,
                        input_shape=args.input_shape, dynamic_batch=not args.static_batch,
                        opset=args.opset, dynamo=not args.torchscript)
    print(f"wrote {path}")
    print(summarize_model(path))
    return 0


def add_cli(subparsers) -> None:
    """Register ``python -m course_utils export SPEC OUT.onnx``."""
    parser = subparsers.add_parser(
        "export", help="export a PyTorch model to ONNX (dynamic batch, atomic write)",
        description="Export SPEC (torchvision:<name> or package.module:factory) to OUT.onnx "
                    "with a dynamic batch dimension and print a summary. Models built from a "
                    f"spec get random weights seeded with {SPEC_SEED}, so `verify` with the "
                    "same spec compares the same weights.")
    parser.add_argument("spec", help="torchvision:<name> or package.module:factory")
    parser.add_argument("out", type=path_arg("OUT"), help="path of the .onnx file to write")
    parser.add_argument("--input-shape", type=number_list("--input-shape", 1, _MAX_DIMENSION,
                                                          example="3,224,224"),
                        help="one sample's shape without batch, e.g. 3,224,224, each size from 1 "
                        f"to {_MAX_DIMENSION:,} (default for torchvision: the model's crop size)")
    add_number(parser, "--example-batch", low=1, high=1024, default=2,
               help="batch size of the example input")
    parser.add_argument("--static-batch", action="store_true",
                        help="keep the example's batch size fixed in the file")
    add_number(parser, "--opset", low=1, high=99,
               help="ai.onnx opset to target (each exporter writes a narrower range, checked "
                    "before the model is built)")
    parser.add_argument("--torchscript", action="store_true",
                        help="use the older TorchScript exporter (dynamo=False)")
    parser.set_defaults(func=_cli_export)
