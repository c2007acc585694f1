"""The install check behind notebook 00 and ``python -m course_utils doctor``.

Covers: the environment report (Python, OS, CPU and cores, CUDA GPU if any),
each course package marked ok / newer / missing / too old with the command that fixes
it (a local build of the pinned release, such as PyTorch's ``2.14.1+cpu``, is ok), the known ``onnxruntime`` + ``onnxruntime-gpu`` conflict, whether ONNX
Runtime has a second real provider here (and why not), the Netron build
age, and a smoke test (a tiny model exported and run by ONNX Runtime). Does
not cover: provider details (``providers.py``).

Everything heavy is imported inside functions and every probe is guarded, so
the check runs (and says what is wrong) in a half-broken environment.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import importlib.metadata as _metadata
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MissingDependencyError
from .formatting import format_table
from .hardware import read_cpu_name

__all__ = ["check_install", "InstallReport", "PackageStatus", "installed_ort_versions",
           "make_tiny_model", "netron_build_date", "read_pyproject", "smoke_test"]

NETRON_UI_LIFETIME_DAYS = 180  # Netron's UI asks to "update" past this age
_DIST = "onnx-course"
_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@dataclass(frozen=True)
class PackageStatus:
    """One package: what the course pins, what is installed, and the fix."""

    name: str
    required: str
    found: str | None
    status: str  # "ok", "newer", "missing", "too old", "broken (why)"
    fix: str = ""
    optional: bool = False


@dataclass
class InstallReport:
    """The environment report; ``str(report)`` is the table students read."""

    system: dict
    packages: list[PackageStatus]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every required package is fine and nothing blocks the course."""
        return not self.problems

    def __str__(self) -> str:
        lines = [f"{key:<10} {value}" for key, value in self.system.items()]
        lines.append("")
        rows = []
        for p in self.packages:
            status = p.status + (" (instructors only)" if p.optional and p.status != "ok" else "")
            fix = f"   fix: {p.fix}" if p.fix else ""
            rows.append([p.name, p.required, p.found or "-", status + fix])
        width = max([14] + [len(p.name) for p in self.packages])
        lines += format_table(["package", "course pin", "installed", "status"], rows,
                              align="<<<<", widths=[width, 12, 12, 0])
        lines.append("")
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        for problem in self.problems:
            lines.append(f"PROBLEM: {problem}")
        lines.append("All required parts are fine." if self.ok
                     else f"{len(self.problems)} problem(s): fix them with the commands above.")
        return "\n".join(lines)


def _course_requirements() -> list[tuple[str, str, bool]]:
    """(name, pinned version, optional) from the installed package or pyproject.toml."""
    try:
        requirements = _metadata.requires(_DIST) or []
    except _metadata.PackageNotFoundError:  # not pip-installed (conda route): read the pins
        project = read_pyproject().get("project", {})
        requirements = list(project.get("dependencies", []))
        for extra, names in project.get("optional-dependencies", {}).items():
            requirements += [f'{name}; extra == "{extra}"' for name in names]
    result = []
    for line in requirements:
        spec, _, marker = line.partition(";")
        name, _, version = spec.strip().partition("==")
        if name == "onnxruntime-gpu":
            continue  # the "gpu" build meets the onnxruntime row (see _installed_version)
        if marker.strip() and "extra" not in marker and not _marker_holds(marker):
            continue  # a package for other platforms (the OpenVINO plugin's wheels)
        # The "cpu" and "gpu" extras choose ONNX Runtime's build: one of them is required.
        build = re.search(r"extra\s*==\s*['\"](cpu|gpu)['\"]", marker)
        result.append((name, version, "extra" in marker and not build))
    return result


def _marker_holds(marker: str) -> bool:
    """Does an environment marker (``sys_platform == 'linux' and ...``) hold here?"""
    try:
        from packaging.markers import Marker
    except ImportError:  # without packaging, list the package: a missing row names its fix
        return True
    try:
        return Marker(marker.strip()).evaluate()
    except Exception:  # a marker packaging cannot read: list the package
        return True


def read_pyproject(path: Path = _PYPROJECT) -> dict:
    """The course's ``pyproject.toml`` as a dict ({} when there is none).

    Raises:
        MissingDependencyError: on Python 3.10 without ``tomli`` (``pip install tomli``;
            an ``ImportError`` too).
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise MissingDependencyError("reading pyproject.toml on Python 3.10 needs tomli: "
                              "pip install tomli (or use Python 3.11+)") from None
    if not path.exists():
        return {}
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def _version_key(version: str) -> tuple:
    """A version as a sortable key, without its local label: ``2.14.1+cpu`` (PyTorch's CPU-only
    index) and ``2.14.1+cu128`` are builds of the release ``2.14.1`` and sort as it does."""
    try:
        from packaging.version import Version

        return (Version(Version(version).public),)
    except Exception:  # packaging absent or odd version: compare numerically
        return tuple(int(x) for x in re.findall(r"\d+", version.partition("+")[0])[:3])


def _pin_status(found: str, pinned: str) -> str:
    """"ok" for the pinned release (any local build of it), else "newer" or "too old"."""
    found_key, pinned_key = _version_key(found), _version_key(pinned)
    if found_key == pinned_key:
        return "ok"
    return "too old" if found_key < pinned_key else "newer"


# Distributions whose import is probed too: installed is not the same as working.
_IMPORT_NAMES = {"numpy": "numpy", "onnx": "onnx", "onnxruntime": "onnxruntime", "torch": "torch"}


def _import_error(name: str) -> str | None:
    """Why the package's module fails to import, or None when it imports."""
    module = _IMPORT_NAMES.get(name)
    if module is None:
        return None
    import sys
    import tempfile

    # Compiled extensions print their own traceback to the C-level stderr on a failed
    # import; keep that out of the report (the row below says what went wrong).
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                importlib.import_module(module)
            except Exception as error:  # any failure on import means a broken install
                first = str(error).splitlines()[0][:120] if str(error) else ""
                return f"{type(error).__name__}: {first}"
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
    return None


#: Distributions that install the same ``onnxruntime`` module: the CPU build and
#: the GPU build (the course pins the first; an NVIDIA user installs the second).
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")


def installed_ort_versions() -> dict[str, str]:
    """{distribution: version} for every installed build of the ``onnxruntime`` module.

    Empty when none is installed. ``metadata.version("onnxruntime")`` alone raises
    where only ``onnxruntime-gpu`` is installed, although ``import onnxruntime`` works.
    """
    found = {}
    for name in ORT_DISTRIBUTIONS:
        try:
            found[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            continue
    return found


def _installed_version(name: str) -> str:
    # The onnxruntime pin is met by either build (the GPU build reports its own name).
    if name == "onnxruntime":
        versions = installed_ort_versions()
        if not versions:
            raise _metadata.PackageNotFoundError(name)
        return versions.get("onnxruntime") or next(iter(versions.values()))
    return _metadata.version(name)


def _package_rows() -> list[PackageStatus]:
    rows = []
    for name, pinned, optional in _course_requirements():
        fix = f"pip install '{name}=={pinned}'"
        try:
            found = _installed_version(name)
        except _metadata.PackageNotFoundError:
            rows.append(PackageStatus(name, pinned, None, "missing", fix, optional))
            continue
        broken = _import_error(name)
        if broken:
            rows.append(PackageStatus(name, pinned, found, f"broken ({broken})",
                                      f"pip install --force-reinstall '{name}=={pinned}'", optional))
        else:
            status = _pin_status(found, pinned)
            rows.append(PackageStatus(name, pinned, found, status, fix if status == "too old" else "",
                                      optional))
    return rows


def _gpu_description() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
        return "none (CPU only: every notebook works, GPU cells are skipped)"
    except Exception as error:  # torch broken: the package table says why
        return f"unknown (torch failed to import: {type(error).__name__})"


def _second_provider_line() -> str:
    """Whether ONNX Runtime has a real provider besides the CPU here (and why not)."""
    try:
        from .devices import describe_second_provider

        return f"a second one besides the CPU? {describe_second_provider()}"
    except Exception as error:  # onnxruntime broken: the package table says why
        return f"unknown (onnxruntime failed: {type(error).__name__})"


def netron_build_date() -> _dt.date | None:
    """The build date of the installed Netron UI, read from its index.html, or None."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("netron")
        if spec is None or not spec.submodule_search_locations:
            return None
        index = Path(list(spec.submodule_search_locations)[0]) / "index.html"
        match = re.search(r'<meta name="date" content="(\d{4}-\d{2}-\d{2})', index.read_text("utf-8"))
        return _dt.date.fromisoformat(match.group(1)) if match else None
    except (OSError, ValueError):
        return None


def make_tiny_model():
    """Notebook 00's tiny model and its input, the same in every process (seed 0).

    Returns:
        ``(model, x)``: ``Linear(4, 8)``, ``ReLU``, ``Linear(8, 3)`` in eval mode, and ``x`` of
        shape ``(2, 4)`` (batch, features), drawn right after the weights, as notebook 00 does.
    """
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    return model, torch.randn(2, 4)


def smoke_test() -> float:
    """Export a tiny torch model to ONNX, run it with ONNX Runtime, return the max abs error.

    Raises:
        RuntimeError: the two runtimes disagree beyond 1e-5, with the error size.
    """
    import numpy as np
    import onnxruntime as ort
    import torch

    model, example = make_tiny_model()
    # The course's export path: the dynamo exporter (needs onnxscript), dynamic batch.
    program = torch.onnx.export(model, (example,), None, verbose=False,
                                input_names=["x"],
                                dynamic_shapes={"input": {0: torch.export.Dim("batch")}})
    session = ort.InferenceSession(program.model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    x = torch.randn(3, 4)  # (batch, features): a batch size the export never saw
    with torch.inference_mode():
        expected = model(x).numpy()
    got = session.run(None, {"x": x.numpy()})[0]
    error = float(np.abs(expected - got).max())
    if not np.allclose(expected, got, rtol=1e-5, atol=1e-5):
        raise RuntimeError(f"ONNX Runtime and PyTorch disagree by {error:.2e} on a tiny model; "
                           "reinstall onnxruntime and torch at the course's pins")
    return error


def check_install(run_smoke_test: bool = True, today: _dt.date | None = None) -> InstallReport:
    """Check this environment for the course and return the report.

    Example:
        >>> report = check_install()  # doctest: +SKIP
        >>> print(report)             # the table, with a fix for each problem
        >>> report.ok
        True
    """
    system = {
        "Python": platform.python_version(),
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "CPU": f"{read_cpu_name()}, {os.cpu_count()} logical cores",
        "GPU": _gpu_description(),
    }
    report = InstallReport(system, _package_rows())
    for row in report.packages:
        if (row.status in ("missing", "too old") or row.status.startswith("broken")) \
                and not row.optional:
            report.problems.append(f"{row.name} is {row.status}: {row.fix}")
    installed = {d.metadata["Name"].lower() for d in _metadata.distributions() if d.metadata["Name"]}
    if {"onnxruntime", "onnxruntime-gpu"} <= installed:
        report.problems.append(
            "onnxruntime and onnxruntime-gpu are both installed and overwrite each other's files; "
            "keep one: pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu "
            "(NVIDIA GPU) or ... && pip install onnxruntime (CPU)")
    ort_row = next((p for p in report.packages if p.name == "onnxruntime"), None)
    system["providers"] = (_second_provider_line() if ort_row and ort_row.status in ("ok", "newer")
                           else "unknown: onnxruntime is missing or broken (see the table)")
    built = netron_build_date()
    if built is not None:
        age = ((today or _dt.date.today()) - built).days
        system["Netron UI"] = f"built {built.isoformat()}, {age} days ago"
        if age > NETRON_UI_LIFETIME_DAYS:
            report.warnings.append(
                f"Netron's UI is {age} days old and refuses to run after {NETRON_UI_LIFETIME_DAYS} "
                "days ('Please update'): pip install --upgrade netron, or open the file at netron.app")
    if run_smoke_test and not report.problems:
        try:
            system["smoke test"] = f"tiny model: PyTorch and ONNX Runtime agree (max abs error {smoke_test():.1e})"
        except Exception as error:
            report.problems.append(f"smoke test failed: {error}")
    return report


def _run_cli(args) -> int:
    report = check_install(run_smoke_test=not args.no_smoke_test)
    print(report)
    return 0 if report.ok else 1


def add_cli(subparsers) -> None:
    """Register ``doctor``."""
    parser = subparsers.add_parser("doctor", help="check this environment for the course")
    parser.add_argument("--no-smoke-test", action="store_true", help="skip the export/run smoke test")
    parser.set_defaults(func=_run_cli)
