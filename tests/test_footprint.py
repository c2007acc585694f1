"""Tests for course_utils/footprint.py: sizes from RECORD, dependencies from Requires-Dist."""
import importlib.metadata as metadata
from pathlib import Path

import pytest

from course_utils.footprint import format_footprints, measure_footprint, plot_footprints


def _install_fake(site, name, version, requires=(), files=None):
    """Write a minimal installed distribution: METADATA, RECORD and the files it lists."""
    module = name.replace("-", "_")
    info = site / f"{module}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    record = []
    for relative, size, listed_size in (files or [(f"{module}/__init__.py", 100, True)]):
        path = site / relative
        if size is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * size)
        record.append(f"{relative},sha256=abc,{size if listed_size else ''}")
    record.append(f"{info.name}/RECORD,,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """An app whose dependencies exercise extras, markers, a diamond and a missing one."""
    site = tmp_path / "site"
    _install_fake(site, "course-fake-app", "1.0", requires=[
        "course-fake-lib[fast]>=2",
        "course-fake-util",
        'course-fake-docs; extra == "docs"',       # an optional extra of the root: skipped
        'course-fake-win; sys_platform == "never"',  # a marker false everywhere: skipped
        "course-fake-absent",                      # required but not installed
    ], files=[("course_fake_app/__init__.py", 1000, True),
              ("course_fake_app/__pycache__/x.pyc", 50, False),  # no size listed: stat'ed
              ("course_fake_app/deleted.py", None, False)])      # listed but gone
    _install_fake(site, "course-fake-lib", "2.0", requires=[
        "course-fake-util",                         # a diamond: counted once
        'course-fake-speedup; extra == "fast"',     # an extra the app asks for: followed
        'course-fake-big; extra == "all"',          # an extra nobody asks for: skipped
    ], files=[("course_fake_lib/core.so", 20000, True)])
    for name in ("course-fake-util", "course-fake-speedup", "course-fake-docs",
                 "course-fake-win", "course-fake-big"):
        _install_fake(site, name, "0.1")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_walks_runtime_dependencies_and_requested_extras(fake_site):
    """Are runtime deps and requested extras followed, optional extras and false markers skipped?"""
    footprint = measure_footprint("course-fake-app")
    names = [d.name for d in footprint.distributions]
    assert names[0] == "course-fake-app"  # the root first, then by size
    assert sorted(names) == ["course-fake-app", "course-fake-lib", "course-fake-speedup",
                             "course-fake-util"]
    required_by = {d.name: d.required_by for d in footprint.distributions}
    assert required_by == {"course-fake-app": None, "course-fake-lib": "course-fake-app",
                           "course-fake-util": "course-fake-app",
                           "course-fake-speedup": "course-fake-lib"}
    assert footprint.missing == ["course-fake-absent (required by course-fake-app)"]


def test_sizes_come_from_record_and_disk(fake_site):
    """Are RECORD sizes summed, unlisted sizes measured on disk, and vanished files skipped?"""
    footprint = measure_footprint("course-fake-app")
    app = next(d for d in footprint.distributions if d.name == "course-fake-app")
    record_bytes = len((fake_site / "course_fake_app-1.0.dist-info" / "RECORD").read_bytes())
    assert app.size_bytes == 1000 + 50 + record_bytes
    assert app.files == 4
    assert footprint.size_mb_of("course-fake-lib") == pytest.approx(
        (20000 + len((fake_site / "course_fake_lib-2.0.dist-info" / "RECORD").read_bytes())) / 1e6)
    assert footprint.total_bytes == sum(d.size_bytes for d in footprint.distributions)


def test_root_extras_are_followed_when_named(fake_site):
    """Does naming an extra on a root ("app[docs]") add that extra's dependencies?"""
    names = {d.name for d in measure_footprint("course-fake-app[docs]").distributions}
    assert "course-fake-docs" in names and "course-fake-big" not in names


def test_missing_root_names_the_install_command():
    """Is a root that is not installed refused with the pip command to fix it?"""
    with pytest.raises(ImportError, match="pip install course-no-such-dist"):
        measure_footprint("course-no-such-dist")


@pytest.mark.parametrize("args", [(), ("onnx runtime!",)])
def test_bad_arguments_are_refused(args):
    """Are no roots, or an unparsable requirement, refused with a ValueError?"""
    with pytest.raises(ValueError):
        measure_footprint(*args)


def test_real_onnxruntime_environment():
    """Does the real ONNX Runtime footprint hold numpy and protobuf, and match RECORD?"""
    footprint = measure_footprint("onnxruntime")
    names = {d.name.lower() for d in footprint.distributions}
    assert {"onnxruntime", "numpy", "protobuf", "flatbuffers", "packaging"} <= names
    assert "sympy" not in names and "ml_dtypes" not in names  # extras "symbolic", "quantization"
    listed = sum(f.size or 0 for f in metadata.distribution("onnxruntime").files)
    assert footprint.size_mb_of("onnxruntime") * 1e6 >= listed


def test_onnxruntime_serving_is_smaller_than_pytorch():
    """Is a serving environment with ONNX Runtime smaller than one with PyTorch, as notebook 05 shows?"""
    ort = measure_footprint("onnxruntime", "fastapi", "uvicorn")
    torch = measure_footprint("torch", "fastapi", "uvicorn")
    assert ort.total_bytes < torch.total_bytes
    shared = {"fastapi", "uvicorn", "starlette", "pydantic"}
    for footprint in (ort, torch):
        assert shared <= {d.name.lower() for d in footprint.distributions}


def test_table_and_chart_show_each_environment(fake_site):
    """Do the table and the chart show every environment with its total?"""
    import matplotlib

    matplotlib.use("Agg")
    footprints = {"app": measure_footprint("course-fake-app"),
                  "util only": measure_footprint("course-fake-util")}
    table = format_footprints(footprints)
    assert "app" in table.splitlines()[2] and "util only" in table.splitlines()[3]
    assert f"{footprints['app'].total_mb:.1f}" in table
    figure = plot_footprints(footprints)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["app", "util only"]
    bars = figure.axes[0].patches  # three segments per environment, in order
    assert sum(b.get_width() for b in bars[:3]) == pytest.approx(footprints["app"].total_mb)
    assert bars[0].get_width() == pytest.approx(footprints["app"].size_mb_of("course-fake-app"))


def test_the_python_layer_is_counted_when_asked(fake_site):
    """With base=True, is the interpreter and standard library (without site-packages, test
    suites or .pyc files) added once to the total, and shown in the table and the chart?"""
    import matplotlib
    import sysconfig

    from course_utils.footprint import measure_python_base

    matplotlib.use("Agg")
    plain, based = measure_footprint("course-fake-app"), measure_footprint("course-fake-app", base=True)
    layer = measure_python_base()
    assert based.base == layer and based.total_bytes == plain.total_bytes + layer.size_bytes
    assert [d.name for d in based.distributions] == [d.name for d in plain.distributions]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    assert layer.size_bytes > (stdlib / "os.py").stat().st_size  # at least the library itself
    assert "; python " in format_footprints({"app": based})
    bars = plot_footprints({"app": based}).axes[0].patches  # four segments now
    assert len(bars) == 4 and bars[3].get_width() == pytest.approx(layer.size_mb)


def test_gpu_build_brings_its_cuda_extras(fake_site, monkeypatch):
    """Is the GPU build measured with the CUDA and cuDNN extras it declares, and the CPU build
    as it is?"""
    from course_utils import footprint

    _install_fake(fake_site, "onnxruntime-gpu", "9.9", requires=[
        'course-fake-util; extra == "cuda"', 'course-fake-big; extra == "cudnn"',
        'course-fake-docs; extra == "symbolic"'])
    metadata_file = fake_site / "onnxruntime_gpu-9.9.dist-info" / "METADATA"
    metadata_file.write_text(metadata_file.read_text() + "Provides-Extra: symbolic\n"
                             "Provides-Extra: cuda\nProvides-Extra: cudnn\n")
    monkeypatch.setattr(footprint, "onnxruntime_distribution", lambda: "onnxruntime-gpu")
    requirement = footprint.onnxruntime_requirement()
    assert requirement == "onnxruntime-gpu[cuda,cudnn]"
    names = {d.name for d in measure_footprint(requirement).distributions}
    assert {"course-fake-util", "course-fake-big"} <= names and "course-fake-docs" not in names
    monkeypatch.setattr(footprint, "onnxruntime_distribution", lambda: "onnxruntime")
    assert footprint.onnxruntime_requirement() == "onnxruntime"
