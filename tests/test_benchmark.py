"""Tests for course_utils/benchmark.py, the sweep and its CLI (timing.py and sessions.py have their own).

Nothing here asserts a speed: timings on a shared machine prove nothing. The
sweep is tested on a tiny CNN for the shape of what it reports and the settings
it ran with; speed targets live in ``python -m course_utils bench``.
"""
import json

import pytest

from course_utils import benchmark as bench
from course_utils.roofline import Probe

#: Small probes: the ceiling is measured for real, in a fraction of a second.
SMALL_PROBES = (Probe("onnxruntime", "Conv", 32, 8), Probe("onnxruntime", "MatMul", 64),
                Probe("torch", "conv2d", 32, 8), Probe("torch", "mm", 64))


@pytest.fixture(scope="module", autouse=True)
def small_ceiling():
    """Every benchmark here measures its ceiling with small probes, two rounds of each."""
    measure = bench.measure_fp32_ceiling
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench, "measure_fp32_ceiling", lambda threads: measure(
            threads, probes=SMALL_PROBES, rounds=2, repeats=1))
        yield


def test_share_of_cpu_used_by_other_programs():
    """Is the machine's busy time minus our own, per core and second, what others used?"""
    # 10 s on 2 cores: the machine was busy 20 CPU-seconds, 7 of them ours
    assert bench._others_share((0.0, 10.0, 5.0), (10.0, 30.0, 12.0), cpus=2) == 0.65
    assert bench._others_share((0.0, 10.0, 5.0), (10.0, 14.0, 9.0), cpus=2) == 0.0
    assert bench._others_share(None, (1.0, 2.0, 3.0)) is None


# ---------------------------------------------------------------- the sweep
def _tiny_cnn():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(  # built from torch classes only, so it can go to a subprocess
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny CNN exported once per image size, 16 and 24 px."""
    from course_utils.export import export_model

    model, folder = _tiny_cnn(), tmp_path_factory.mktemp("tiny")
    paths = {size: export_model(model, folder / f"tiny-{size}.onnx", input_shape=(3, size, size))
             for size in (16, 24)}
    return model, paths


FAST = dict(warmup=1, min_repeats=4, max_repeats=8, budget_s=0.01, progress=False)


@pytest.fixture(scope="module")
def tiny_result(tiny):
    model, paths = tiny
    return bench.benchmark(model, paths, shapes=[(1, 16), (1, 24), (2, 16)],
                           backends=["torch-eager", "ort-disabled", "ort-all"], threads=1,
                           name="tiny", **FAST)


def test_sweep_covers_every_shape_and_backend(tiny_result):
    """Does the result hold one record per (shape, backend), in the order asked for?"""
    assert tiny_result.backends == ["torch-eager", "ort-disabled", "ort-all"]
    assert tiny_result.shapes == [(1, 16), (1, 24), (2, 16)]
    assert len(tiny_result.records) == 9
    assert all(r["n"] >= 4 for r in tiny_result.records)


def test_both_backends_ran_with_the_threads_asked_for(tiny_result):
    """Did PyTorch and every ONNX Runtime session really use 1 thread, without spinning?"""
    for record in tiny_result.records:
        assert record["threads"] == 1
        if record["backend"].startswith("ort-"):
            assert record["inter_op_threads"] == 1 and record["spinning"] == "0"
            assert record["setup_ms"] > 0  # session creation, reported apart from latency


def test_torch_threads_are_restored(tiny):
    """Does a benchmark leave PyTorch's global thread count as it found it?"""
    import torch

    before = torch.get_num_threads()
    bench.benchmark(tiny[0], tiny[1], shapes=[(1, 16)], backends=["torch-eager"],
                    threads=before + 1, **FAST)
    assert torch.get_num_threads() == before


def test_derived_numbers_follow_from_the_records(tiny_result):
    """Are speedup, GFLOP/s and the share of the peak computed from the medians?"""
    for r in tiny_result.records:
        eager = tiny_result.find("torch-eager", r["batch"], r["size"])
        assert r["speedup"] == pytest.approx(eager["median_ms"] / r["median_ms"])
        # at most 8 samples here: too few for an interval, so none is reported
        assert r["speedup_low"] is None and r["speedup_high"] is None
        assert r["gflops_per_s"] == pytest.approx(r["flops"] / 1e9 / (r["median_ms"] / 1e3))
        assert r["peak_share"] == pytest.approx(r["gflops_per_s"] / tiny_result.peak_gflops)
        assert r["ceiling_share"] == pytest.approx(
            r["gflops_per_s"] / tiny_result.ceiling["gflops"])
        library = "torch" if r["backend"].startswith("torch") else "onnxruntime"
        assert r["gemm_share"] == pytest.approx(
            r["gflops_per_s"] / tiny_result.gemm[library]["best_gflops"])
    # a batch of 2 is twice the work of a batch of 1
    one, two = (tiny_result.find("ort-all", batch, 16)["flops"] for batch in (1, 2))
    assert two == 2 * one


def test_json_has_the_headline_and_every_configuration(tiny_result, tmp_path):
    """Does the JSON carry the headline, the hardware, the settings and every record?"""
    data = json.loads(tiny_result.save_json(tmp_path / "sub" / "bench.json").read_text())
    head = data["headline"]
    assert {"model", "batch", "size", "torch_ms", "ort_ms", "speedup"} <= set(head)
    assert (head["model"], head["batch"], head["size"]) == ("tiny", 1, 16)  # no 224 measured
    assert head["speedup"] == pytest.approx(head["torch_ms"] / head["ort_ms"])
    assert head["ort_ms"] == tiny_result.find("ort-all", 1, 16)["median_ms"]
    assert {"cpu", "physical_cores", "flags", "torch", "onnxruntime"} <= set(data["hardware"])
    assert data["settings"]["threads"] == 1 and data["settings"]["statistic"] == "median"
    assert data["settings"]["others_cpu_share"] == tiny_result.settings["others_cpu_share"]
    assert len(data["results"]) == 9
    needed = {"backend", "batch", "size", "median_ms", "iqr_ms", "p90_ms", "n", "setup_ms",
              "gflops_per_s", "peak_share", "speedup"}
    assert all(needed <= set(r) for r in data["results"])


def test_table_and_plots(tiny_result):
    """Do the table and both plots show every backend?"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = tiny_result.format_table()
    assert all(b in table for b in tiny_result.backends) and "median ms" in table
    latency = bench.plot_latency(tiny_result)
    assert len(latency.axes) == 2 and len(latency.axes[0].get_legend().get_texts()) == 3
    speedup = bench.plot_speedup(tiny_result)
    legend = [t.get_text() for t in speedup.axes[0].get_legend().get_texts()]
    assert legend == ["ort-disabled", "ort-all"]
    plt.close("all")


def test_one_process_per_backend(tiny):
    """Does isolate=True measure each backend in its own process and report the same records?"""
    model, paths = tiny
    result = bench.benchmark(model, paths, shapes=[(1, 16)], backends=["torch-eager", "ort-all"],
                             threads=1, isolate=True, **FAST)
    assert result.settings["isolate"] and result.backends == ["torch-eager", "ort-all"]
    assert result.find("ort-all", 1, 16)["spinning"] == "0"


def test_isolate_refuses_a_model_it_cannot_send(tiny):
    """Is a model defined in a notebook (not picklable) refused with the way out?"""
    import torch

    class Local(torch.nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="isolate=False"):
        bench.benchmark(Local(), tiny[1], shapes=[(1, 16)], backends=["torch-eager"],
                        isolate=True, **FAST)


def test_bad_arguments_are_refused_before_any_work(tiny):
    """Are an unknown backend, preset or a size without a file named with the choices?"""
    model, paths = tiny
    with pytest.raises(ValueError, match="ort-all"):
        bench.benchmark(model, paths, backends=["onnxruntime"])
    with pytest.raises(ValueError, match="quick"):
        bench.benchmark(model, paths, preset="fast")
    with pytest.raises(KeyError, match=r"\[224\]"):
        bench.benchmark(model, paths, shapes=[(1, 224)])


def test_headline_reports_an_interval_only_from_enough_samples(tiny_result):
    """Does the headline carry the speedup and sample counts, and an interval only from at
    least MIN_INTERVAL_SAMPLES runs per side (saying so otherwise)?"""
    from course_utils.bench_results import add_derived_figures
    from course_utils.timing import MIN_INTERVAL_SAMPLES

    head = tiny_result.headline
    assert head["n"]["torch"] >= 4 and head["n"]["ort"] >= 4
    assert head["speedup_low"] is None and "fewer than" in head["interval"]
    many = [{"backend": b, "batch": 1, "size": 16, "median_ms": m + 0.005 * (MIN_INTERVAL_SAMPLES - 1),
             "samples_ms": [m + 0.01 * i for i in range(MIN_INTERVAL_SAMPLES)]}
            for b, m in (("torch-eager", 10.0), ("ort-all", 5.0))]
    add_derived_figures(many, {(1, 16): None}, None)
    assert many[1]["speedup_low"] <= many[1]["speedup"] <= many[1]["speedup_high"]


# ---------------------------------------------------------------- the bench command
def test_cli_writes_json_and_plots(monkeypatch, tmp_path, tiny, capsys):
    """Does `bench --json --plots` print the table and headline and write the files?"""
    from course_utils.cli import main

    monkeypatch.setitem(bench.PRESETS, "quick", bench.Preset(
        shapes=((1, 16), (1, 24)), backends=("torch-eager", "ort-all"), warmup=1,
        min_repeats=3, max_repeats=5, budget_s=0.01, round_runs=2, headline_samples=4,
        isolate=False))
    monkeypatch.setattr(bench, "_prepare_model", lambda name, folder, sizes: tiny)
    code = main(["bench", "--preset", "quick", "--threads", "1", "--json",
                 str(tmp_path / "b.json"), "--plots", str(tmp_path / "plots")])
    out = capsys.readouterr().out
    assert code == 0 and "headline: resnet18 batch 1 at 16 px" in out
    assert "than eager PyTorch; too few samples for an interval" in out  # 4 runs each
    assert "measured fp32 ceiling" in out and "nominal fp32 peak" in out
    assert "best GEMM measured" in out and "error" not in out
    assert json.loads((tmp_path / "b.json").read_text())["headline"]["size"] == 16
    assert (tmp_path / "plots" / "bench-speedup.png").is_file()


def test_cli_int8_names_the_winning_recipe(monkeypatch, tmp_path, tiny, capsys):
    """Does `bench --int8` time every recipe and say in its JSON which one won?"""
    from course_utils.cli import main
    from course_utils.quantization import INT8_RECIPES

    monkeypatch.setitem(bench.PRESETS, "quick", bench.Preset(
        shapes=((1, 16),), backends=("torch-eager", "ort-all"), warmup=1, min_repeats=3,
        max_repeats=4, budget_s=0.01, round_runs=2, headline_samples=4, isolate=False))
    monkeypatch.setattr(bench, "_prepare_model", lambda name, folder, sizes: tiny)
    monkeypatch.setattr(bench, "INT8_BUDGET_S", 0.01)
    code = main(["bench", "--threads", "1", "--int8", "--json", str(tmp_path / "b.json")])
    int8 = json.loads((tmp_path / "b.json").read_text())["int8"]
    assert code == 0 and [r["variant"] for r in int8["rows"]] == ["fp32", *INT8_RECIPES]
    assert int8["winner"] in ["fp32", *INT8_RECIPES]
    fastest = max(int8["rows"][1:], key=lambda r: r["speedup"])
    if int8["winner"] == "fp32":  # none faster, or excluded, or within fp32's band (a tie)
        assert (fastest["speedup"] <= 1 or fastest["variant"] in int8["choice"]["excluded"]
                or "fp32" in int8["choice"]["tied"])
    out = capsys.readouterr().out
    assert int8["sentences"][0] in out and "QOperator S8S8" in out


def test_cli_runtimes_add_the_contenders_and_the_fastest_row(monkeypatch, tmp_path, tiny, capsys):
    """Does `bench --runtimes` time the contenders asked for, print them with their precision,
    and write the `contenders` table and the `fastest` row into the JSON?"""
    from course_utils.cli import main

    monkeypatch.setitem(bench.PRESETS, "quick", bench.Preset(
        shapes=((1, 16),), backends=("torch-eager", "ort-all"), warmup=1, min_repeats=3,
        max_repeats=4, budget_s=0.01, round_runs=2, headline_samples=4, isolate=False))
    monkeypatch.setattr(bench, "_prepare_model", lambda name, folder, sizes: tiny)
    code = main(["bench", "--threads", "1", "--runtimes", "torch-eager,torch-channels-last,ort",
                 "--json", str(tmp_path / "b.json")])
    data = json.loads((tmp_path / "b.json").read_text())
    assert code == 0 and [r["runtime"] for r in data["contenders"]] == [
        "torch-eager", "torch-channels-last", "ort"]
    assert all(r["precision"] == "fp32" for r in data["contenders"])
    measured = [r for r in data["contenders"] if not r["skipped"]]
    assert data["fastest"]["runtime"] == min(measured, key=lambda r: r["median_ms"])["runtime"]
    assert "fastest here:" in capsys.readouterr().out
    assert main(["bench", "--runtimes", "tensorflow"]) == 1
    assert "unknown runtime(s) ['tensorflow']" in capsys.readouterr().err


def test_cli_cuda_without_gpu_is_one_line(capsys):
    """Does `bench --device cuda` on a machine without CUDA fail with one clear line?"""
    import torch

    from course_utils.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["bench", "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: device 'cuda' asked for") and err.count("\n") == 1
