"""Tests for course_utils/export.py: model specs, export_model, the export CLI.

Export is checked by equivalence, not frozen numbers: every exported file is run
in ONNX Runtime against PyTorch with explicit tolerances (see verify.py).
"""
import os
import subprocess
import sys

import onnx
import pytest
import torch
import torchvision

from conftest import ROOT
from course_utils.cli import main
from course_utils.export import ExportError, export_model, load_model_spec
from course_utils.verify import verify_model

DIGITS = "course_utils.digits:DigitsCNN"
FILES = ROOT / "tests" / "files"
# DigitsCNN (spec weights) in ONNX Runtime against PyTorch, measured on an AMD EPYC (Zen 4,
# AVX-512 VNNI, 2 cores): largest abs error 1.8e-7 over input seeds 0-4 and batches 1-32,
# for the dynamo export, an example batch of 1 and the TorchScript export at opset 13
# (outputs up to 0.37); 10x margin, rounded up. rtol=0: near-zero logits differ by up to
# 5e-2 relatively, so atol carries the comparison. Other seeded weights (seeds 1-3): 1.8e-7 too.
DIGITS_PARITY = {"rtol": 0.0, "atol": 2e-6}


def batch_dims(path):
    """dim 0 of every input and output: "batch" when dynamic, an int when fixed."""
    model = onnx.load(str(path), load_external_data=False)
    return [v.type.tensor_type.shape.dim[0].dim_param or v.type.tensor_type.shape.dim[0].dim_value
            for v in [*model.graph.input, *model.graph.output]]


def give_signal(model, shape):
    """Make random-weight outputs large enough that a parity check can fail.

    With random init many torchvision models output ~1e-9 (or exactly 0: ViT's head
    starts at zero), and any tolerance passes. Setting BatchNorm statistics from
    one random batch (as training would) and a random head restores outputs of ~1.
    """
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one batch sets the statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(16, *shape))
    if isinstance(model, torchvision.models.VisionTransformer):
        torch.nn.init.normal_(model.heads.head.weight, std=0.5)
    return model.eval()


# --- load_model_spec --------------------------------------------------------------------

def test_spec_gives_the_same_weights_every_time():
    """Does a spec build an eval-mode model with the same seeded weights on every call?"""
    torch.manual_seed(123)
    before = torch.rand(1)
    a, b = load_model_spec("torchvision:squeezenet1_1"), load_model_spec("torchvision:squeezenet1_1")
    assert not a.training and type(a).__name__ == "SqueezeNet"
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)  # the caller's random state is left alone


def test_factory_specs_accept_classes_functions_and_modules():
    """Can a spec name a module class, a factory function or a module object?"""
    assert type(load_model_spec(DIGITS)).__name__ == "DigitsCNN"
    sys.path.insert(0, str(FILES))
    try:
        assert type(load_model_spec("data_dependent_branch:make_model")).__name__ == \
            "DataDependentBranch"
    finally:
        sys.path.remove(str(FILES))


@pytest.mark.parametrize("spec, error, text", [
    ("resnet18", ValueError, "did you mean 'torchvision:resnet18'?"),
    ("torchvision:resnet81", ValueError, "did you mean resnet18"),
    ("no_such_package.models:Net", ImportError, "could not import 'no_such_package.models'"),
    ("course_utils.digits:DigitCNN", ValueError, "did you mean DigitsCNN?"),
    ("course_utils.digits:accuracy", TypeError, "callable without arguments"),
    ("course_utils.digits:load_digits_split", TypeError, "gave a tuple, not a torch.nn.Module"),
])
def test_bad_spec_says_what_is_wrong(spec, error, text):
    """Is each malformed or wrong spec refused with what was expected and a suggestion?"""
    with pytest.raises(error, match=None) as raised:
        load_model_spec(spec)
    assert text in str(raised.value)


# --- export_model -----------------------------------------------------------------------

def test_export_has_a_named_dynamic_batch_and_matches_pytorch(tmp_path):
    """Does the default export name the batch 'batch' on input and output, and match PyTorch?"""
    path = export_model(DIGITS, tmp_path / "sub" / "digits.onnx", input_shape=(1, 8, 8))
    assert path == tmp_path / "sub" / "digits.onnx" and path.is_file()
    assert batch_dims(path) == ["batch", "batch"]
    assert [p.name for p in path.parent.iterdir()] == ["digits.onnx"]  # one file, no leftovers
    assert verify_model(path, DIGITS, batch_sizes=(1, 5), **DIGITS_PARITY).passed


def test_example_batch_of_one_still_gives_a_dynamic_batch(tmp_path):
    """Does an example batch of 1 with dynamic_batch=True still give a dynamic batch?"""
    path = export_model(DIGITS, tmp_path / "b1.onnx", input_shape=(1, 8, 8), example_batch=1)
    assert batch_dims(path) == ["batch", "batch"]
    assert verify_model(path, DIGITS, batch_sizes=(4,), **DIGITS_PARITY).passed


def test_static_batch_keeps_the_example_batch(tmp_path):
    """Does dynamic_batch=False record the example's batch size as a constant?"""
    path = export_model(DIGITS, tmp_path / "static.onnx", input_shape=(1, 8, 8),
                        example_batch=3, dynamic_batch=False)
    assert batch_dims(path) == [3, 3]


def test_torchscript_exporter_and_an_older_opset(tmp_path):
    """Does dynamo=False export with a dynamic batch, at the opset asked for?"""
    path = export_model(DIGITS, tmp_path / "ts.onnx", input_shape=(1, 8, 8), dynamo=False,
                        opset=13)
    model = onnx.load(str(path))
    assert batch_dims(path) == ["batch", "batch"]
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
    assert verify_model(path, DIGITS, batch_sizes=(2,), **DIGITS_PARITY).passed


def test_opset_the_dynamo_exporter_cannot_write_is_refused(tmp_path):
    """Is an opset below 18 with the dynamo exporter refused (not silently raised to 18)?"""
    with pytest.raises(ExportError, match="dynamo=False"):
        export_model(DIGITS, tmp_path / "old.onnx", input_shape=(1, 8, 8), opset=13)
    assert not (tmp_path / "old.onnx").exists()


def test_data_dependent_branch_gives_the_cause_line_and_options(tmp_path):
    """Does a Python branch on tensor values fail with the cause, the line and the options?"""
    sys.path.insert(0, str(FILES))
    try:
        with pytest.raises(ExportError) as raised:
            export_model("data_dependent_branch:make_model", tmp_path / "branch.onnx",
                         input_shape=(4,))
    finally:
        sys.path.remove(str(FILES))
    message = str(raised.value)
    assert "data-dependent control flow" in message
    assert "data_dependent_branch.py:14" in message and "if x.sum() > 0" in message
    assert "torch.where" in message and "dynamo=False" in message
    assert isinstance(raised.value, RuntimeError)  # the CLI's one-line errors cover it


def test_failed_export_leaves_an_existing_file_untouched(tmp_path):
    """Is a failed export atomic: the old file intact and no temporary files left?"""
    target = tmp_path / "model.onnx"
    target.write_bytes(b"the previous, working model")

    class FixedBatch(torch.nn.Module):
        def forward(self, x):
            return x + torch.zeros(2, 4)  # the example's batch size as a number

    with pytest.raises(ExportError, match="fixes the batch size|fixed to 2"):
        export_model(FixedBatch(), target, input_shape=(4,))
    assert target.read_bytes() == b"the previous, working model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_custom_module_without_input_shape_is_asked_for_one(tmp_path):
    """Is a module of unknown input shape refused with how to give one?"""
    with pytest.raises(ValueError, match=r"input_shape=\(C, H, W\).*--input-shape"):
        export_model(torch.nn.Linear(4, 2), tmp_path / "linear.onnx")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        export_model(42, tmp_path / "x.onnx", input_shape=(1,))


# Five families that export cleanly with the dynamo exporter, at small inputs so the
# file stays under two minutes on 2 cores. Measured export + verify on a shared 2-core
# machine (load ~3): mobilenet_v3_small 22 s, convnext_tiny 17 s, resnet18 11 s,
# squeezenet1_1 8 s, small ViT 6 s. efficientnet_b0 exports and verifies too (23-37 s,
# largest error 2e-5), but its MBConv blocks are MobileNetV3's family, so it is left out.
ARCHITECTURES = {
    "resnet18": (lambda: torchvision.models.resnet18(), (3, 64, 64)),  # residual CNN
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(), (3, 64, 64)),
    "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(), (3, 64, 64)),  # fire modules
    "convnext_tiny": (lambda: torchvision.models.convnext_tiny(), (3, 64, 64)),  # LayerNorm, GELU
    # vit_b_16 itself takes 86 M parameters; the same architecture, small:
    "vision_transformer": (lambda: torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64),
        (3, 32, 32)),
}
# atol per architecture: 10x the largest abs error of ONNX Runtime against PyTorch measured
# on an AMD EPYC (Zen 4, AVX-512 VNNI, 2 cores) at batches 1, 3 and 8, input seeds 0-2,
# weights built as below from seeds 0 (the test's), 1 and 2, rounded up to 1-2-5; rtol=0
# (near-zero outputs differ by up to 4e-2 relatively). Largest abs error (largest output):
# resnet18 6.8e-6 (2.3), mobilenet_v3_small 2.1e-6 (0.43), squeezenet1_1 8.3e-7 (2.1),
# convnext_tiny 2.7e-6 (2.6), vision_transformer 8.3e-6 (11).
ARCHITECTURE_ATOL = {"resnet18": 1e-4, "mobilenet_v3_small": 5e-5, "squeezenet1_1": 1e-5,
                     "convnext_tiny": 5e-5, "vision_transformer": 1e-4}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_torchvision_architecture_exports_and_verifies(name, tmp_path):
    """Does each architecture family export with a dynamic batch and match PyTorch at batch 1 and 3?"""
    build, shape = ARCHITECTURES[name]
    torch.manual_seed(0)
    model = give_signal(build(), shape)
    path = export_model(model, tmp_path / f"{name}.onnx", input_shape=shape)
    assert batch_dims(path)[0] == "batch"
    report = verify_model(path, model, batch_sizes=(1, 3), rtol=0.0, atol=ARCHITECTURE_ATOL[name])
    assert report.passed and not report.warnings, str(report)


# --- the export CLI -----------------------------------------------------------------------

def test_export_cli_writes_and_summarizes(tmp_path, capsys):
    """Does `export` write the file and print its summary?"""
    out = tmp_path / "digits.onnx"
    assert main(["export", DIGITS, str(out), "--input-shape", "1,8,8"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "x: float32[batch, 1, 8, 8]" in printed and "checker     ok" in printed


@pytest.mark.parametrize("args, text", [
    (["torchvision:resnet81"], "did you mean resnet18"),
    ([DIGITS], "--input-shape"),
    ([DIGITS, "--input-shape", "1,eight,8"], "--input-shape must be whole numbers from 1"),
])
def test_export_cli_errors_are_one_line(args, text, tmp_path, capsys):
    """Does `export` turn a bad spec or shape into one error line, writing nothing?"""
    out = tmp_path / "x.onnx"
    assert main(["export", args[0], str(out), *args[1:]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and text in err and "Traceback" not in err
    assert not out.exists()


def test_export_cli_unexportable_model_in_a_fresh_process(tmp_path):
    """From a shell, does an unexportable model give the explanation, exit 1, no traceback, no file?"""
    out = tmp_path / "branch.onnx"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FILES), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-m", "course_utils", "export", "data_dependent_branch:make_model",
         str(out), "--input-shape", "4"], capture_output=True, text=True, cwd=ROOT, env=env,
        timeout=300)
    assert result.returncode == 1
    assert result.stderr.startswith("error: could not export data_dependent_branch:make_model")
    assert "Traceback" not in result.stderr and "options:" in result.stderr
    assert result.stdout == "" and not out.exists()


def test_a_wrong_dynamic_shapes_key_is_shown_in_a_few_lines_that_name_the_fix(capsys):
    """In a notebook after explain_export_errors(), does a dynamic_shapes key that is not forward's
    argument name fail the cell with a short message naming the cause and what to change?"""
    from IPython.core.interactiveshell import InteractiveShell

    from course_utils.export import explain_export_errors

    shell = InteractiveShell.instance()
    try:
        assert explain_export_errors()
        result = shell.run_cell(
            "import torch\n"
            "model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()\n"
            "torch.onnx.export(model, (torch.randn(2, 4),), 'never-written.onnx', dynamo=True, verbose=False,\n"
            "                  dynamic_shapes={'x': {0: torch.export.Dim('batch')}})\n")
        shown = capsys.readouterr().out
    finally:
        shell.set_custom_exc((), None)
        InteractiveShell.clear_instance()
    assert result.error_in_exec is not None  # the cell still fails
    assert "the keys of dynamic_shapes are not the names of the arguments" in shown
    assert "inspect.signature(model.forward)" in shown
    assert len(shown.strip().splitlines()) <= 4 and "Traceback" not in shown


def test_explain_export_errors_outside_ipython_changes_nothing():
    """Does explain_export_errors() return False where no IPython shell runs?"""
    from course_utils.export import explain_export_errors

    assert explain_export_errors() is False
