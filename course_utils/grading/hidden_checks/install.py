"""Hidden checks for notebook 00 (install check) and their test data: grader only, never released."""
from __future__ import annotations

from pathlib import Path

from ...checks import CheckFailed, register
from ...exercise_checks.install import (as_float_arrays, call_distributions_of, call_pin_status, run_smoke_file,
                                        tiny_reference)

#: (installed, pinned) pairs the public checks do not try: trailing zeros, a longer number that
#: starts like the pin, pre- and development releases, local builds of other releases.
_PIN_PAIRS = [("2.14.10", "2.14.1"), ("2.14.1rc1", "2.14.1"), ("1.20", "1.20.0"), ("1.20.0", "1.20"),
              ("2.14.2+cpu", "2.14.1"), ("2.14.0+cu128", "2.14.1"), ("2.15.0.dev20260101+cpu", "2.14.1"),
              ("2.14.1.post1", "2.14.1"), ("0.29.1+cpu", "0.29.1"), ("10.0", "9.9.9")]


def pin_status_oracle(installed, pinned) -> str:
    """00.1's truth from packaging (what pip itself uses): the release without its local label."""
    from packaging.version import Version

    if installed is None:
        return "missing"
    found, pin = Version(Version(installed).public), Version(pinned)
    return "ok" if found == pin else "newer" if found > pin else "too old"


@register("00.1", hidden=True)
def _versions_as_pip_orders_them(fn):
    for installed, pinned in _PIN_PAIRS:
        got, wanted = call_pin_status(fn, installed, pinned), pin_status_oracle(installed, pinned)
        if got != wanted:
            raise CheckFailed(f"pin_status({installed!r}, {pinned!r}) gave {got!r}, not {wanted!r}: "
                              "order versions as pip does (packaging's rules)")
from ..cases import Cases, Right, Wrong, built, context_item


@register("00.2", hidden=True)
def _really_two_runtimes(smoke):
    # smoke["pair"]: a CapturedPair (answers.py) that knows whether the entries were one object.
    # Where PyTorch and ONNX Runtime agree to the last bit, values alone cannot tell who made them.
    import numpy as np

    pair = smoke["pair"]
    if pair.same_object:
        raise CheckFailed("both entries are the same object: compare two different runtimes")
    if (pair.modules or ("", ""))[1].startswith("torch"):
        raise CheckFailed("the second entry is a torch tensor: it should come from session.run")
    torch_out, ort_out = as_float_arrays(pair)
    x, expected = tiny_reference()
    if np.array_equal(torch_out, ort_out) and not np.array_equal(expected, run_smoke_file(smoke, x)):
        raise CheckFailed("torch_out is ONNX Runtime's result, not PyTorch's: compare two different runtimes")


@register("00.2", hidden=True)
def _file_computes_tiny(smoke):
    # The file must be `tiny` itself, not a model that happens to give its outputs on `x`.
    import numpy as np

    probe = np.random.default_rng(29).standard_normal((2, 4)).astype(np.float32) * 3
    _, expected = tiny_reference(probe)
    if not np.allclose(run_smoke_file(smoke, probe), expected, rtol=1e-5, atol=1e-5):
        raise CheckFailed("the exported file does not compute `tiny` on other inputs: export the model itself")


@register("00.3", hidden=True)
def _import_name_is_not_the_package_name(fn):
    # A module whose distribution has another name: a function that returns [module]
    # for any installed module fails here.
    found = call_distributions_of(fn, "sklearn")
    if found != ["scikit-learn"]:
        raise CheckFailed(f"distributions_of('sklearn') gave {found}: read which distribution "
                          "installed the module's files, not the module's name")


# --- test data (grading/cases.py): right and wrong answers, the alternative ----------------------

@context_item
def tiny_files(c):
    """00.2's ingredients, in the work folder: `tiny` exported twice (input names "x" and "input"), with batch 1,
    a model that gives tiny's outputs on `x` only, a text file; and tiny's outputs in both runtimes."""
    import warnings

    import numpy as np
    import onnx
    import onnxruntime
    import torch
    from onnx import TensorProto, helper, numpy_helper

    from ...install import make_tiny_model

    tiny, x = make_tiny_model()
    folder = c.subfolder("artifacts")
    with warnings.catch_warnings():
        # The TorchScript exporter (its deprecation notice silenced): 3-7 s against 18-19 s for
        # the dynamo exporter in a fresh process on a busy 2-core machine, and the checks read
        # any exporter's file; the notebook's own dynamo export goes through them in nbval and
        # in the alternative-answers run.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(tiny, (x,), folder / "tiny.onnx", dynamo=False, input_names=["x"])
        torch.onnx.export(tiny, (x,), folder / "tiny-torchscript.onnx", dynamo=False, input_names=["input"])
        torch.onnx.export(tiny, (x[:1],), folder / "tiny-batch1.onnx", dynamo=False, input_names=["x"])
    session = onnxruntime.InferenceSession(folder / "tiny.onnx", providers=["CPUExecutionProvider"])
    ort_out = session.run(None, {"x": x.numpy()})[0]
    # A model that ignores its input: tiny's outputs on `x` plus x @ zeros, exactly those bits.
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "zeros"], ["nothing"]), helper.make_node("Add", ["outputs", "nothing"], ["y"])],
        "outputs-of-x", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(ort_out, "outputs"), numpy_helper.from_array(np.zeros((4, 3), np.float32), "zeros")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), folder / "outputs-of-x.onnx")
    (folder / "notes.txt").write_text("not a model\n")
    with torch.inference_mode():
        torch_out = tiny(x).numpy()
        elsewhere = tiny(x + 1).numpy()
    other_input = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    return {"torch_out": torch_out, "ort_out": ort_out, "x": x.numpy(), "torch_on_other_x": elsewhere,
            "ort_on_other_x": session.run(None, {"x": other_input})[0]}


def _smoke(c, onnx_file="artifacts/tiny.onnx", torch_out="torch_out", ort_out="ort_out"):
    """An answer to 00.2 from tiny_files' arrays (named) or the arrays given."""
    made = tiny_files(c)
    pick = lambda v: made[v].copy() if isinstance(v, str) else v  # noqa: E731 (a fresh copy each)
    return {"onnx_file": onnx_file, "torch_out": pick(torch_out), "ort_out": pick(ort_out)}


def _torch_and_ort_agree_bitwise(c):
    import numpy as np

    made = tiny_files(c)
    if np.array_equal(made["torch_out"], made["ort_out"]):
        return "PyTorch and ONNX Runtime give the same bits on this CPU: the values cannot tell them apart"
    return None


def _same_array_twice(c):
    ort = tiny_files(c)["ort_out"].copy()
    return {"onnx_file": "artifacts/tiny.onnx", "torch_out": ort, "ort_out": ort}


def _ort_out_as_tensor(c):
    import torch

    return _smoke(c, ort_out=torch.from_numpy(tiny_files(c)["ort_out"].copy()))


def _run(c, name, input_name):
    import onnxruntime

    session = onnxruntime.InferenceSession(c.subfolder("artifacts") / name, providers=["CPUExecutionProvider"])
    return session.run(None, {input_name: tiny_files(c)["x"]})[0]


def _split_at_plus(installed, pinned):
    """00.1 right: the part before '+' as a packaging Version."""
    from packaging.version import Version

    if installed is None:
        return "missing"
    found, pin = Version(installed.split("+")[0]), Version(pinned)
    return "ok" if found == pin else ("newer" if found > pin else "too old")


def _none_not_handled(installed, pinned):
    from packaging.version import Version

    found, pin = Version(Version(installed).public), Version(pinned)  # TypeError for None
    return "ok" if found == pin else ("newer" if found > pin else "too old")


def _swapped(installed, pinned):
    status = pin_status_oracle(installed, pinned)
    return {"newer": "too old", "too old": "newer"}.get(status, status)


def _as_text(installed, pinned):
    if installed is None:
        return "missing"
    base = installed.split("+")[0]
    return "ok" if base == pinned else ("newer" if base > pinned else "too old")


def _local_label_newer(installed, pinned):
    from packaging.version import Version

    if installed is None:
        return "missing"
    found, pin = Version(installed), Version(pinned)  # 2.14.1+cpu sorts after 2.14.1
    return "ok" if found == pin else ("newer" if found > pin else "too old")


def _equal_as_text(installed, pinned):
    from packaging.version import Version

    if installed is None:
        return "missing"
    base = installed.split("+")[0]
    if base == pinned:
        return "ok"
    return "newer" if Version(base) > Version(pinned) else "too old"


def _starts_with(installed, pinned):
    from packaging.version import Version

    if installed is None:
        return "missing"
    if installed.startswith(pinned):
        return "ok"
    return "newer" if Version(installed) > Version(pinned) else "too old"


def _release_only(installed, pinned):
    from packaging.version import Version

    if installed is None:
        return "missing"
    found, pin = Version(installed).release, Version(pinned).release
    return "ok" if found == pin else ("newer" if found > pin else "too old")


def _versions(onnx_version=None, ort_version=None) -> dict:
    import onnx
    import onnxruntime

    return {"onnx": onnx_version or onnx.__version__, "onnxruntime": ort_version or onnxruntime.__version__}


def distributions_of(module):
    """00.3's right answer, written here from the distributions' file lists (not as the reference)."""
    import importlib.metadata

    return sorted({dist.metadata["Name"] for dist in importlib.metadata.distributions()
                   if any(f.parts[:1] == (module,) or f.parts[:1] == (f"{module}.py",) for f in dist.files or [])})


def _indexing_raises(module):
    import importlib.metadata

    return sorted(importlib.metadata.packages_distributions()[module])  # KeyError for an unknown module


def _torch_version() -> str:
    import torch

    return torch.__version__


_BUILDS, _NO_SUCH = "install:_onnxruntime_builds", "install:_no_such_module"
CASES = [
    Cases("00.1",
          alternative='''from packaging.specifiers import SpecifierSet
from packaging.version import Version


def pin_status(installed, pinned):
    if installed is None:
        return "missing"
    if installed in SpecifierSet("==" + pinned):  # == ignores a local label, as pip does
        return "ok"
    return "newer" if Version(installed) > Version(pinned) else "too old"''',
          right=[Right("packaging-public", pin_status_oracle),
                 Right("split-at-plus", _split_at_plus)],
          wrong=[Wrong("a-dict-of-versions", built(lambda c: _versions()), "install:_a_function",
                       "pass the function itself"),
                 Wrong("returns-a-bool", lambda installed, pinned: installed == pinned, "install:_a_function",
                       "returned True; return one of 'ok', 'newer', 'too old' or 'missing'"),
                 Wrong("none-not-handled", _none_not_handled, "install:_missing_is_missing",
                       "installed is None when the package is not installed at all"),
                 Wrong("newer-and-too-old-swapped", _swapped, "install:_newer_and_too_old",
                       "'newer' means the installed version comes after the pin"),
                 Wrong("compared-as-text", _as_text, "install:_versions_are_not_text",
                       "compare the numbers between the dots as numbers"),
                 Wrong("a-local-build-is-newer", _local_label_newer, "install:_a_build_of_the_pin_is_ok",
                       "names a build of that release, not a later release"),
                 Wrong("equal-as-text-ordered-as-versions", _equal_as_text, "install:_versions_as_pip_orders_them",
                       "pin_status('1.20', '1.20.0') gave 'too old', not 'ok'"),
                 Wrong("starts-with-the-pin", _starts_with, "install:_versions_as_pip_orders_them",
                       "pin_status('2.14.10', '2.14.1') gave 'ok', not 'newer'"),
                 Wrong("release-numbers-only", _release_only, "install:_versions_as_pip_orders_them",
                       "pin_status('2.14.1rc1', '2.14.1') gave 'ok', not 'too old'")],
          answer_words=["Version(", ".public", "SpecifierSet"]),
    Cases("00.2",
          alternative='''out_file = Path("artifacts") / "tiny.onnx"
torch.onnx.export(tiny, (x,), str(out_file), input_names=["features"], dynamo=True, external_data=False)
sess = onnxruntime.InferenceSession(str(out_file), providers=["CPUExecutionProvider"])
with torch.no_grad():
    expected = tiny(x).detach().numpy()
(got,) = sess.run(None, {"features": x.numpy()})
smoke = dict(onnx_file=str(out_file), torch_out=expected, ort_out=got)''',
          right=[Right("the-reference-file", built(lambda c: _smoke(c, Path("artifacts") / "tiny.onnx"))),
                 Right("a-str-with-dot", built(lambda c: _smoke(c, "./artifacts/tiny.onnx"))),
                 Right("torchscript-exporter", built(lambda c: _smoke(
                     c, "artifacts/tiny-torchscript.onnx", ort_out=_run(c, "tiny-torchscript.onnx", "input"))))],
          wrong=[Wrong("a-pair-without-a-file", built(lambda c: (tiny_files(c)["torch_out"],) * 2),
                       "install:_smoke_dict", "expected a dict with the keys 'onnx_file', 'torch_out' and 'ort_out'"),
                 Wrong("no-file-written", built(lambda c: _smoke(c, "artifacts/never-exported.onnx", ort_out="torch_out")),
                       "install:_exported_file", "there is no readable file at artifacts/never-exported.onnx"),
                 Wrong("outside-the-folder", built(lambda c: _smoke(c, "../tiny.onnx")), "install:_exported_file",
                       "is outside the notebook's folder"),
                 Wrong("not-an-onnx-file", built(lambda c: _smoke(c, "artifacts/notes.txt")), "install:_exported_file",
                       "is not an ONNX file"),
                 Wrong("batch-of-one", built(lambda c: _smoke(c, torch_out=tiny_files(c)["torch_out"][:1],
                                                                 ort_out=tiny_files(c)["ort_out"][:1])),
                       "install:_outputs_shapes", "should have shape (2, 3)"),
                 Wrong("ort-out-copied-from-pytorch", built(lambda c: _smoke(c, ort_out="torch_out")),
                       "install:_ort_out_from_the_file", "ort_out is PyTorch's result, not ONNX Runtime's",
                       skip=_torch_and_ort_agree_bitwise),
                 Wrong("ort-run-on-another-input", built(lambda c: _smoke(c, ort_out="ort_on_other_x")),
                       "install:_ort_out_from_the_file", "ort_out is not what ONNX Runtime's CPU provider computes"),
                 Wrong("outputs-of-another-file", built(lambda c: _smoke(c, "artifacts/tiny-torchscript.onnx",
                                                                         ort_out="ort_on_other_x")),
                       "install:_ort_out_from_the_file", "ort_out is not what ONNX Runtime's CPU provider computes"),
                 Wrong("exported-with-batch-1", built(lambda c: _smoke(c, "artifacts/tiny-batch1.onnx")),
                       "install:_ort_out_from_the_file", "ONNX Runtime cannot run the exported file on `x`"),
                 Wrong("torch-on-another-input", built(lambda c: _smoke(c, torch_out="torch_on_other_x")),
                       "install:_torch_out_is_tiny_on_x", "torch_out is not what `tiny` gives in PyTorch"),
                 Wrong("one-array-twice", built(_same_array_twice), "install:_really_two_runtimes",
                       "both entries are the same object"),
                 Wrong("ort-out-a-torch-tensor", built(_ort_out_as_tensor), "install:_really_two_runtimes",
                       "the second entry is a torch tensor"),
                 Wrong("torch-out-copied-from-ort", built(lambda c: _smoke(c, torch_out="ort_out")),
                       "install:_really_two_runtimes", "torch_out is ONNX Runtime's result, not PyTorch's",
                       skip=_torch_and_ort_agree_bitwise),
                 Wrong("a-model-of-x-only", built(lambda c: _smoke(c, "artifacts/outputs-of-x.onnx")),
                       "install:_file_computes_tiny", "the exported file does not compute `tiny` on other inputs")],
          answer_words=["atol", "InferenceSession(", "providers="]),
    Cases("00.3",
          alternative='''import importlib.metadata as md


def distributions_of(module):
    names = set()
    for dist in md.distributions():
        for file in dist.files or []:
            if file.parts and file.parts[0] in (module, module + ".py"):
                names.add(dist.metadata["Name"])
                break
    return sorted(names)''',
          right=[Right("from-the-file-lists", distributions_of)],
          wrong=[Wrong("the-module-name-itself", lambda module: [module] if module == "onnxruntime" else [],
                       "install:_import_name_is_not_the_package_name", "distributions_of('sklearn') gave []"),
                 Wrong("both-builds-always", lambda module: ["onnxruntime", "onnxruntime-gpu"], _BUILDS,
                       "installed distribution(s) put files in the onnxruntime module folder"),
                 Wrong("a-string", lambda module: "onnxruntime", _BUILDS, "returned str; return a list"),
                 Wrong("not-sorted", lambda module: ["onnxruntime", "another"], _BUILDS, "is not sorted"),
                 Wrong("same-list-for-any-module", lambda module: distributions_of("onnxruntime"), _NO_SUCH,
                       "no installed distribution provides such a module, so return []"),
                 Wrong("raises-for-an-unknown-module", _indexing_raises, _NO_SUCH, "the function raised KeyError")],
          answer_words=["packages_distributions", "scikit-learn"]),
]
