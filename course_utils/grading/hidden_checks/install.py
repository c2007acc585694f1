"""Hidden checks for notebook 00 (install check) and their test data: grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.install import call_distributions_of
from ..cases import Cases, Right, Wrong, built, context_item


@register("00.2", hidden=True)
def _really_two_runtimes(outputs):
    # outputs: a CapturedPair (answers.py) that knows whether the entries were one object
    if getattr(outputs, "same_object", False):
        raise CheckFailed("both entries are the same object: compare two different runtimes")
    if getattr(outputs, "modules", ("", ""))[1].startswith("torch"):
        raise CheckFailed("the second entry is a torch tensor: it should come from session.run")


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
def tiny_outputs(c):
    """00.2's ingredients: a tiny Linear's output in PyTorch (a tensor) and in ONNX Runtime, on one x."""
    import io
    import warnings

    import onnxruntime
    import torch

    torch.manual_seed(0)
    tiny = torch.nn.Linear(4, 3).eval()
    x = torch.randn(2, 4)  # (batch, features)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(tiny, (x,), buffer, dynamo=False, input_names=["x"])
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        torch_out = tiny(x)
    return torch_out, session.run(None, {"x": x.numpy()})[0]


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


_VERSIONS, _PAIR = "install:_versions_match_installed", "install:_outputs_pair"
_BUILDS, _NO_SUCH = "install:_onnxruntime_builds", "install:_no_such_module"
CASES = [
    Cases("00.1",
          right=[Right("the-modules-versions", built(lambda c: _versions()))],
          wrong=[Wrong("a-list", built(lambda c: list(_versions().values())), "install:_versions_dict",
                       "expected a dict with the keys"),
                 Wrong("missing-key", built(lambda c: {"onnx": _versions()["onnx"]}), "install:_versions_dict",
                       "the dict lacks the key(s) ['onnxruntime']"),
                 Wrong("swapped", built(lambda c: _versions(_versions()["onnxruntime"], _versions()["onnx"])),
                       "install:_versions_not_swapped", "the version stored under 'onnx' is onnxruntime's"),
                 Wrong("made-up-version", built(lambda c: _versions("1.0.0")), _VERSIONS,
                       "the version given for onnx is not the one installed"),
                 Wrong("torch-version", built(lambda c: _versions(_torch_version())), _VERSIONS,
                       "the version given for onnx is not the one installed")],
          answer_words=built(lambda c: [_versions()["onnx"]])),
    Cases("00.2",
          alternative='''out_file = Path("artifacts") / "tiny.onnx"
torch.onnx.export(tiny, (x,), out_file, input_names=["features"], dynamo=True, verbose=False)
sess = onnxruntime.InferenceSession(str(out_file), providers=["CPUExecutionProvider"])
with torch.no_grad():
    expected = tiny(x).detach().numpy()
(got,) = sess.run(None, {"features": x.numpy()})
outputs = [expected, got]''',
          right=[Right("torch-numpy-and-ort", built(lambda c: (tiny_outputs(c)[0].numpy(), tiny_outputs(c)[1])))],
          wrong=[Wrong("one-array-twice", built(lambda c: (tiny_outputs(c)[1],) * 2), "install:_really_two_runtimes",
                       "both entries are the same object"),
                 Wrong("second-from-torch-not-session",
                       built(lambda c: (tiny_outputs(c)[0].numpy(), tiny_outputs(c)[0].clone())),
                       "install:_really_two_runtimes", "the second entry is a torch tensor"),
                 Wrong("one-output", built(lambda c: tiny_outputs(c)[1]), _PAIR,
                       "expected a pair (torch_out, ort_out)"),
                 Wrong("batch-of-one", built(lambda c: (tiny_outputs(c)[0].numpy()[:1], tiny_outputs(c)[1][:1])),
                       _PAIR, "both outputs should have shape (2, 3)"),
                 Wrong("different-inputs", built(lambda c: (tiny_outputs(c)[0].numpy() + 1.0, tiny_outputs(c)[1])),
                       _PAIR, "the two outputs differ by more than 1e-5")],
          answer_words=["atol"]),
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
