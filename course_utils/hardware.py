"""What this machine is: CPU model, instruction-set flags, clock, cores, and its fp32 peak.

Covers: reading ``/proc/cpuinfo`` (:func:`read_cpuinfo`, :func:`read_cpu_name`,
:func:`read_cpu_flags`), the hardware record kept with every benchmark
(:func:`describe_hardware`), the machine a notebook ran on, printed by each
notebook's first code cell and recorded by the build (:func:`machine_record`,
:func:`format_machine`, :func:`print_machine`), the int8 dot-product flags
(``INT8_DOT_FLAGS``) and the nominal fp32 peak from cores, clock and vector width,
with what it assumes (:func:`theoretical_peak`). Does not cover: measuring anything
(the measured fp32 ceiling is in ``roofline.py``, FLOP counts in ``profiling.py``,
latencies in ``benchmark.py``).
Only the standard library at import time: the install check uses it too.
"""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path

from .sessions import default_threads

__all__ = ["read_cpuinfo", "read_cpu_name", "read_cpu_flags", "describe_hardware",
           "machine_record", "format_machine", "print_machine",
           "theoretical_peak", "INT8_DOT_FLAGS", "ASSUMED_CLOCK_GHZ", "ASSUMED_FMA_UNITS"]

_FLAGS = ("sse2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
          "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve")
#: CPU flags of int8 dot-product instructions (x86 VNNI and AMX, Arm dot product and i8mm).
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def read_cpuinfo() -> str | None:
    """The text of ``/proc/cpuinfo``, or None where there is none (not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def _cpuinfo_field(text: str | None, names) -> str | None:
    """The value of the first line whose key is one of ``names`` (first CPU only)."""
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in names and value.strip():
            return value.strip()
    return None


def read_cpu_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` where there is one).

    Args:
        cpuinfo: the text of ``/proc/cpuinfo`` (default: read it now).
    """
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    return _cpuinfo_field(text, ("model name",)) or platform.processor() or platform.machine()


def read_cpu_flags(cpuinfo: str | None = None) -> set:
    """The instruction-set flags (x86 ``flags``, Arm ``Features``); empty when unknown.

    Args:
        cpuinfo: the text of ``/proc/cpuinfo`` (default: read it now).
    """
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    return set((_cpuinfo_field(text, ("flags", "Features")) or "").split())


def describe_hardware(device: str = "cpu") -> dict:
    """CPU model, cores, relevant instruction-set flags, GPU and library versions."""
    import onnx
    import onnxruntime as ort
    import torch

    cpuinfo = read_cpuinfo()
    cpu, flags = read_cpu_name(cpuinfo), read_cpu_flags(cpuinfo)
    clock_ghz, clock_source = _cpu_clock(cpuinfo)
    family = _cpuinfo_field(cpuinfo, ("cpu family",))
    info = {"cpu": cpu, "vendor": _cpuinfo_field(cpuinfo, ("vendor_id",)),
            "family": int(family) if family and family.isdigit() else None,
            "machine": platform.machine(), "physical_cores": default_threads(),
            "clock_ghz": clock_ghz, "clock_source": clock_source,
            "logical_cores": os.cpu_count(), "flags": {f: f in flags for f in _FLAGS},
            "flags_known": bool(flags), "int8_dot_product": any(f in flags for f in INT8_DOT_FLAGS),
            "os": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": ort.__version__, "onnx": onnx.__version__,
            "gpu": None}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        # PyTorch convolutions use TF32 tensor cores by default (matmuls do not)
        info["torch_conv_tf32"] = torch.backends.cudnn.allow_tf32
    return info


#: The instruction sets the course's lessons depend on, as a reader names them, with the
#: /proc/cpuinfo flags that show each: fp32 vectors and FMA (peak, GEMM rate, NCHWc block
#: size), int8 dot products (quantisation: VNNI, AMX), bf16 (the bf16 contenders).
_X86_LESSON_FLAGS = (("AVX2", ("avx2",)), ("FMA", ("fma",)), ("AVX-512", ("avx512f",)),
                     ("AVX-512 VNNI", ("avx512_vnni",)), ("AVX-VNNI", ("avx_vnni",)),
                     ("AVX-512 bf16", ("avx512_bf16",)), ("AMX", ("amx_tile",)))
_ARM_LESSON_FLAGS = (("NEON", ("asimd",)), ("dot product", ("asimddp",)), ("i8mm", ("i8mm",)),
                     ("bf16", ("bf16",)), ("SVE", ("sve",)))
#: The packages whose versions a notebook's numbers depend on (either ONNX Runtime build).
_MACHINE_PACKAGES = ("torch", "onnxruntime", "onnxruntime-gpu")


def machine_record(cpuinfo: str | None = None) -> dict:
    """The machine a notebook runs on: CPU model, the instruction sets the lessons use, cores,
    and the versions of PyTorch and ONNX Runtime.

    Only the standard library (and psutil, where installed): it works before torch imports.
    The build stores it in each executed ``solutions/`` notebook, and every one of them must
    carry the same record (one machine per build).

    Args:
        cpuinfo: the text of ``/proc/cpuinfo`` (default: read it now).

    Returns:
        ``{"cpu", "machine", "logical_cores", "physical_cores", "flags", "packages"}``;
        ``flags`` maps each instruction set's name to whether this CPU has it, and is
        None where the flags cannot be read (not Linux).

    Example:
        >>> record = machine_record()
        >>> sorted(record)
        ['cpu', 'flags', 'logical_cores', 'machine', 'packages', 'physical_cores']
    """
    from importlib import metadata

    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    flags = read_cpu_flags(text)
    arm = bool(flags & {"asimd", "fp"}) and not flags & {"sse2"}
    names = _ARM_LESSON_FLAGS if arm else _X86_LESSON_FLAGS
    packages = {}
    for name in _MACHINE_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"cpu": read_cpu_name(text), "machine": platform.machine(),
            "logical_cores": os.cpu_count(), "physical_cores": default_threads(),
            "flags": {label: any(f in flags for f in keys) for label, keys in names} if flags else None,
            "packages": packages}


def format_machine(record: dict) -> str:
    """The lines :func:`print_machine` prints for a :func:`machine_record`."""
    flags = record.get("flags")
    shown = (", ".join(f"{name} {'yes' if has else 'no'}" for name, has in flags.items())
             if flags else "not readable on this system")
    packages = ", ".join(f"{name} {version}" for name, version in record.get("packages", {}).items())
    return "\n".join([
        f"CPU: {record.get('cpu')} ({record.get('machine')}), {record.get('logical_cores')} logical "
        f"cores, {record.get('physical_cores')} physical",
        f"instruction sets: {shown}",
        f"packages: {packages or 'neither torch nor onnxruntime is installed'}"])


def print_machine() -> None:
    """Print the machine this kernel runs on: what "this CPU" means in the sentences below.

    Example:
        >>> print_machine()  # doctest: +SKIP
        CPU: AMD EPYC 7B13 (x86_64), 2 logical cores, 1 physical
        instruction sets: AVX2 yes, FMA yes, AVX-512 no, AVX-512 VNNI no, AVX-VNNI no, AVX-512 bf16 no, AMX no
        packages: torch 2.14.1, onnxruntime 1.31.1
    """
    print(format_machine(machine_record()))


def _cpu_clock(text: str | None):
    """(GHz, where it came from) of this CPU's clock, from cpufreq or the text of
    /proc/cpuinfo (None where unreadable); (None, reason) when nothing says."""
    try:  # the highest clock the OS may run a core at (absent in most VMs)
        khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()
        return int(khz) / 1e6, "the maximum clock cpufreq reports"
    except (OSError, ValueError):
        pass
    if text is None:
        return None, "no clock readable on this OS"
    named = re.search(r"^model name\s*:.*@\s*([\d.]+)\s*GHz", text, re.MULTILINE)
    if named:
        return float(named.group(1)), "the base clock in the CPU's name (turbo may be higher)"
    current = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.MULTILINE)
    if current:
        return float(current.group(1)) / 1e3, ("the clock /proc/cpuinfo reports "
                                                 "(the turbo clock may be higher)")
    return None, "no clock in /proc/cpuinfo or cpufreq"


#: Clock used when the machine does not say; the result says it was assumed.
ASSUMED_CLOCK_GHZ = 3.0
#: FMA units per core assumed, as the flags cannot show them: two on most x86 cores since
#: Haswell and Zen 2 and on big Arm cores, but one 512-bit unit on Intel's AVX-512 Xeon
#: Bronze and Silver and most Gold 5100/5200 parts. The measured ceiling
#: (``roofline.measure_fp32_ceiling``) is what decides.
ASSUMED_FMA_UNITS = 2


def theoretical_peak(hardware: dict, threads: int | None = None, *, clock_ghz=None,
                     fma_units: int = ASSUMED_FMA_UNITS) -> dict:
    """The nominal fp32 peak: what this CPU would do if every FMA unit did an FMA every cycle.

    A figure computed from assumptions, not a measurement: a program can read
    neither the clock the cores really run at (a virtual machine's
    ``/proc/cpuinfo`` shows the nominal clock; cores boost above it, and slow
    down with every core busy) nor the number of FMA units. A rate measured above
    it means an assumption is wrong; :func:`course_utils.roofline.measure_fp32_ceiling`
    measures what the machine does, and ``compare_with_nominal`` says which clock
    a measured rate implies.

    peak = cores x clock x FLOP per cycle, where FLOP per cycle = fp32 lanes of the
    widest vector the flags show (512 bits with ``avx512f``, 256 with ``avx``,
    128 with SSE2 or Arm ``asimd``) x 2 (an FMA is a multiply and an add) x the
    FMA units per core. Without ``fma``, a separate multiply and add unit give
    the same two FLOP per lane. Cores are ``min(threads, physical cores)``.

    AMD Zen 4 (vendor ``AuthenticAMD``, family 25, with ``avx512f``) runs a 512-bit
    FMA as two 256-bit halves, so its vectors count as 256 bits wide; on every
    other AVX-512 CPU 512-bit FMAs count at full rate, and the record says so.

    Args:
        hardware: a :func:`describe_hardware` record (``flags``, ``physical_cores``,
            ``clock_ghz``, ``clock_source``, ``vendor``, ``family``).
        threads: threads the measurement used (default: every physical core).
        clock_ghz: override the clock (GHz).
        fma_units: FMA units per core; not visible in the flags, so assumed.

    Returns:
        ``{"gflops", "cores", "clock_ghz", "vector_bits", "flop_per_cycle",
        "assumptions": [sentences], "formula": str}``.

    Example:
        >>> hw = {"flags": {"avx2": True, "fma": True}, "physical_cores": 2,
        ...       "clock_ghz": 3.0, "clock_source": "a test"}
        >>> theoretical_peak(hw)["gflops"]  # 2 cores x 3 GHz x 8 lanes x 2 x 2 units
        192.0
    """
    flags = {name for name, has in hardware.get("flags", {}).items() if has}
    assumptions = [f"{fma_units} FMA unit(s) per core, assumed: the flags do not show how many "
                   "(two on most x86 cores since Haswell and Zen 2)"]
    vendor, family = hardware.get("vendor"), hardware.get("family")
    if "avx512f" in flags and vendor == "AuthenticAMD" and family == 25:
        bits = 256  # Zen 4: 256-bit FMA units; a 512-bit FMA takes two of their cycles
        assumptions.append("AMD family 25 with AVX-512 (Zen 4): its FMA units are 256 bits wide "
                           "and split a 512-bit FMA in two halves, so 512-bit FMAs count at "
                           "half rate")
    elif "avx512f" in flags:
        bits = 512
        who = (f"{vendor} family {family}" if vendor and family is not None
               else "vendor and family unknown")
        assumptions.append(f"512-bit FMAs at full rate ({who}); a CPU that splits them in two "
                           "256-bit halves (AMD Zen 4, some Zen 5 laptops) or has one 512-bit "
                           "FMA unit (Intel Xeon Bronze, Silver, most Gold 5100/5200) reaches "
                           "half this")
    elif "avx" in flags:
        bits = 256
    elif flags & {"sse2", "asimd"} or hardware.get("machine") in ("x86_64", "AMD64", "aarch64"):
        bits = 128
    else:
        bits = 128
        assumptions.append("128-bit vectors (no SIMD flags readable)")
    if not hardware.get("flags_known", bool(flags)):
        assumptions.append("instruction-set flags unreadable: vector width guessed")
    cores = int(hardware.get("physical_cores") or 1)
    if threads:
        cores = min(cores, int(threads))
    if clock_ghz is None:
        clock_ghz = hardware.get("clock_ghz")
        if clock_ghz:
            assumptions.append(f"{clock_ghz:.2f} GHz, {hardware.get('clock_source', 'as given')}")
        else:
            clock_ghz = ASSUMED_CLOCK_GHZ
            assumptions.append(f"the clock is not known ({hardware.get('clock_source', 'none')}); "
                               f"{ASSUMED_CLOCK_GHZ} GHz assumed")
    lanes = bits // 32
    per_cycle = lanes * 2 * fma_units
    return {"gflops": cores * float(clock_ghz) * per_cycle, "cores": cores,
            "clock_ghz": float(clock_ghz), "vector_bits": bits, "flop_per_cycle": per_cycle,
            "assumptions": assumptions,
            "formula": f"{cores} cores x {float(clock_ghz):.2f} GHz x {per_cycle} FLOP/cycle "
                       f"({lanes} fp32 lanes x 2 x {fma_units} FMA units)"}
