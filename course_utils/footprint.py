"""How much disk a serving environment needs, measured from installed distributions.

Covers: starting from a few top-level distributions (``"onnxruntime"``,
``"fastapi"``...), following their ``Requires-Dist`` metadata transitively (the
runtime dependencies: optional extras are skipped unless a requirement asks for
them, environment markers are evaluated for this machine), and adding up the
files each distribution's ``RECORD`` lists; optionally the Python layer beneath
them (:func:`measure_python_base`: the interpreter and its standard library, as a
``python:slim`` image keeps them). This makes a container-size comparison
measurable without Docker. Does not cover: the operating system's own files, nor
files that packages write after installation.

Sizes are in MB = 10**6 bytes and describe the wheels installed *here*. Compare
like with like: PyTorch from PyPI on Linux brings its CUDA libraries as
``nvidia-*`` wheels even without a GPU, while the CPU build of ONNX Runtime has
none; on a GPU build, ``onnxruntime-gpu`` gets its CUDA libraries from the extras
it declares (:func:`onnxruntime_requirement` names them) or from the system.
Without the Python layer, every ratio between two environments is larger than
the ratio between the images they would make.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .formatting import format_table

__all__ = ["DistributionSize", "Footprint", "measure_footprint", "onnxruntime_distribution",
           "onnxruntime_requirement", "measure_python_base", "format_footprints",
           "plot_footprints", "GPU_WHEEL_PREFIXES"]

#: Distributions that install the ``onnxruntime`` module: the CPU build and the GPU build.
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")


@dataclass(frozen=True)
class DistributionSize:
    """One installed distribution and the bytes of the files its RECORD lists.

    Attributes:
        name: the distribution's name as installed, e.g. ``"onnxruntime"``.
        version: its version.
        size_bytes: the total size of its files.
        files: how many files its RECORD lists.
        required_by: the distribution that pulled it in (``None`` for a root).
    """

    name: str
    version: str
    size_bytes: int
    files: int
    required_by: str | None

    @property
    def size_mb(self) -> float:
        """Size in MB (10**6 bytes)."""
        return self.size_bytes / 1e6


@dataclass
class Footprint:
    """The distributions an environment needs, roots first, then by size.

    Attributes:
        roots: the requirements it was measured from.
        distributions: every distribution found, each counted once.
        missing: required distributions that are not installed here, with the
            one that requires them, e.g. ``"nvidia-foo (required by torch)"``.
        base: the Python layer beneath them (:func:`measure_python_base`), or None
            when it was not asked for; counted in ``total_bytes``.
    """

    roots: list[str]
    distributions: list[DistributionSize]
    missing: list[str] = field(default_factory=list)
    base: DistributionSize | None = None

    @property
    def total_bytes(self) -> int:
        """The bytes of all distributions together, and of the Python layer if measured."""
        return sum(d.size_bytes for d in self.distributions) + (
            self.base.size_bytes if self.base else 0)

    @property
    def total_mb(self) -> float:
        """Total size in MB (10**6 bytes)."""
        return self.total_bytes / 1e6

    def size_mb_of(self, name: str) -> float:
        """The size in MB of one distribution of this footprint (0.0 if absent)."""
        key = _canonical(name)
        return sum(d.size_bytes for d in self.distributions if _canonical(d.name) == key) / 1e6

    def largest(self, n: int = 5) -> list[DistributionSize]:
        """The ``n`` largest distributions, largest first."""
        return sorted(self.distributions, key=lambda d: d.size_bytes, reverse=True)[:n]


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _record_size(dist) -> tuple[int, int]:
    # RECORD gives most sizes; entries without one (RECORD itself, .pyc files
    # compiled at install time) are measured on disk.
    total, count = 0, 0
    for entry in dist.files or []:
        count += 1
        if entry.size is not None:
            total += entry.size
            continue
        try:
            total += entry.locate().stat().st_size
        except OSError:
            pass  # listed but gone: nothing on disk to count
    return total, count


def onnxruntime_distribution() -> str:
    """The name of the installed distribution that provides ``import onnxruntime``.

    ``"onnxruntime"`` (the CPU build, the course's default) or ``"onnxruntime-gpu"``
    (``make setup ORT=gpu``): the module is the same, the distribution to measure is not.

    Raises:
        MissingDependencyError: neither is installed, or both are (they overwrite each
            other's files; the message says how to keep one).
    """
    import importlib.metadata as metadata

    from .errors import MissingDependencyError

    installed = []
    for name in ORT_DISTRIBUTIONS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        installed.append(name)
    if not installed:
        raise MissingDependencyError("onnxruntime is not installed: run make setup (or make setup "
                                     "ORT=gpu for an NVIDIA GPU)")
    if len(installed) > 1:
        raise MissingDependencyError(
            "onnxruntime and onnxruntime-gpu are both installed and overwrite each other's files; "
            "keep one: pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu "
            "(NVIDIA GPU) or ... && pip install onnxruntime (CPU)")
    return installed[0]


def onnxruntime_requirement() -> str:
    """The installed ONNX Runtime as a requirement that brings what it runs with.

    ``"onnxruntime"`` for the CPU build; for ``onnxruntime-gpu``, its name with the
    extras it declares for NVIDIA's CUDA and cuDNN wheels (``"onnxruntime-gpu[cuda,
    cudnn]"`` for 1.31), so that a GPU environment counts its CUDA libraries as
    PyTorch's does (those not installed as wheels are listed as missing: they come
    from the system then).
    """
    import importlib.metadata as metadata

    name = onnxruntime_distribution()
    if name == "onnxruntime":
        return name
    extras = set(metadata.metadata(name).get_all("Provides-Extra") or [])
    cuda = sorted(extras & {"cuda", "cudnn"})
    return f"{name}[{','.join(cuda)}]" if cuda else name


def measure_python_base() -> DistributionSize:
    """The Python layer of a serving image: the interpreter, its shared library and the
    standard library, without test suites, ``.pyc`` files and ``site-packages`` (what
    the official ``python:slim`` images leave out). The operating system is not counted.
    """
    import os
    import platform
    import sys
    import sysconfig
    from pathlib import Path

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip_dirs = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
    total, files = 0, 0
    for folder, dirs, names in os.walk(stdlib):
        dirs[:] = [d for d in dirs if d not in skip_dirs]
        for name in names:
            if name.endswith((".pyc", ".pyo")):
                continue
            try:
                total += (Path(folder) / name).stat().st_size
                files += 1
            except OSError:
                pass
    extras = {Path(os.path.realpath(sys.executable))}
    library = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    if library and sysconfig.get_config_var("LIBDIR"):
        extras.add(Path(sysconfig.get_config_var("LIBDIR")) / library)
    for path in extras:
        if path.is_file():
            total += path.stat().st_size
            files += 1
    return DistributionSize("python (interpreter and standard library)",
                            platform.python_version(), total, files, None)


def measure_footprint(*requirements: str, base: bool = False) -> Footprint:
    """Measure the installed size of ``requirements`` and all their runtime dependencies.

    Args:
        *requirements: top-level requirements, e.g. ``"onnxruntime"``,
            ``"fastapi"``; extras may be named (``"uvicorn[standard]"``).
        base: also count the Python layer beneath them (:func:`measure_python_base`),
            the same for every environment: a ratio of two footprints with it is the
            ratio of the images they would make, without the operating system.

    Returns:
        A :class:`Footprint`; ``footprint.total_mb`` is the headline figure.

    Raises:
        ValueError: if no requirement is given or one cannot be parsed.
        ImportError: if a root distribution is not installed (the message names
            the pip command).

    Example:
        >>> ort = measure_footprint("onnxruntime", "fastapi", "uvicorn")
        >>> round(ort.total_mb) > 0, ort.distributions[0].name
        (True, 'onnxruntime')
    """
    import importlib.metadata as metadata

    from packaging.requirements import InvalidRequirement, Requirement

    if not requirements:
        raise ValueError('name at least one distribution, e.g. measure_footprint("onnxruntime")')
    try:
        queue = [(Requirement(r), None) for r in requirements]
    except InvalidRequirement as error:
        raise ValueError(f"cannot parse a requirement: {error}; write e.g. 'onnxruntime'") from None
    for requirement, _ in queue:
        try:
            metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            if _canonical(requirement.name) in ORT_DISTRIBUTIONS:
                raise ImportError(f"{requirement.name!r} is not installed in this environment; "
                                  "measure the onnxruntime build that is: "
                                  "measure_footprint(onnxruntime_distribution(), ...)") from None
            raise ImportError(f"{requirement.name!r} is not installed in this environment; "
                              f"install it (pip install {requirement.name}) or check the "
                              "spelling") from None

    found: dict[str, DistributionSize] = {}
    followed: dict[str, set[str]] = {}  # per distribution: extras already followed
    missing: dict[str, str] = {}
    while queue:
        requirement, parent = queue.pop(0)
        key = _canonical(requirement.name)
        # "" stands for "no extra": the plain runtime dependencies.
        wanted = ({""} | set(requirement.extras)) - followed.get(key, set())
        if not wanted:
            continue  # already counted, and nothing new to follow
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            missing.setdefault(key, parent or "the roots")
            continue
        if key not in found:
            size, files = _record_size(dist)
            found[key] = DistributionSize(dist.metadata["Name"], dist.version, size, files, parent)
        followed.setdefault(key, set()).update(wanted)
        for line in dist.requires or []:
            child = Requirement(line)
            if child.marker is None:
                follow = "" in wanted
            else:  # e.g. 'platform_system == "Linux"' or 'extra == "cublas"'
                follow = any(child.marker.evaluate({"extra": extra}) for extra in wanted)
            if follow:
                queue.append((child, found[key].name))

    roots = {_canonical(Requirement(r).name) for r in requirements}
    ordered = sorted(found.values(),
                     key=lambda d: (_canonical(d.name) not in roots, -d.size_bytes))
    return Footprint(list(requirements), ordered,
                     [f"{name} (required by {parent})" for name, parent in sorted(missing.items())],
                     measure_python_base() if base else None)


def format_footprints(footprints: dict[str, Footprint], top: int = 3) -> str:
    """Return a text table: per environment, distributions, total MB and the largest ones."""
    rows = [[label, len(fp.distributions), f"{fp.total_mb:.1f}",
             "  " + ", ".join(f"{d.name} {d.size_mb:.0f}" for d in fp.largest(top))
             + (f"; python {fp.base.size_mb:.0f}" if fp.base else "")]
            for label, fp in footprints.items()]
    lines = format_table(["environment", "distributions", "total MB", "  largest"], rows,
                         align="<>><", widths=[22, 13, 10, 0])
    lines.insert(1, "-" * (len(lines[0]) + 30))  # room for the largest distributions
    return "\n".join(lines)


#: Name prefixes of the wheels that carry GPU libraries (CUDA, cuDNN, Triton...).
GPU_WHEEL_PREFIXES = ("nvidia-", "cuda-", "triton")


def plot_footprints(footprints: dict[str, Footprint]):
    """Draw one stacked bar per environment and return the figure.

    Each bar splits into the named packages themselves, GPU-library wheels
    (``nvidia-*``, ``cuda-*``, ``triton``), every other dependency and, where it
    was measured, the Python layer.
    """
    import matplotlib.pyplot as plt

    parts = {"the named packages": "tab:blue", "GPU-library wheels": "tab:red",
             "other dependencies": "tab:gray", "Python itself": "tab:olive"}
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.7 * len(footprints)))
    largest = max(fp.total_mb for fp in footprints.values())
    for row, (label, fp) in enumerate(footprints.items()):
        roots = {_canonical(r.split("[")[0]) for r in fp.roots}
        sizes = dict.fromkeys(parts, 0.0)
        for dist in fp.distributions:
            if _canonical(dist.name) in roots:
                sizes["the named packages"] += dist.size_mb
            elif _canonical(dist.name).startswith(GPU_WHEEL_PREFIXES):
                sizes["GPU-library wheels"] += dist.size_mb
            else:
                sizes["other dependencies"] += dist.size_mb
        sizes["Python itself"] = fp.base.size_mb if fp.base else 0.0
        left = 0.0
        for part, colour in parts.items():
            if part == "Python itself" and not any(f.base for f in footprints.values()):
                continue  # no segment, and no legend entry, when no footprint counted it
            ax.barh(row, sizes[part], left=left, color=colour, label=part if row == 0 else None)
            left += sizes[part]
        ax.text(left + 0.01 * largest, row, f"{fp.total_mb:,.0f} MB", va="center")
    ax.set_yticks(range(len(footprints)), list(footprints))
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15 * largest)
    ax.set_xlabel("installed size, MB (10^6 bytes)")
    ax.set_title("what a serving environment needs, measured from installed distributions")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
