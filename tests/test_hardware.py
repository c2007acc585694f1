"""Tests for course_utils/hardware.py: reading /proc/cpuinfo once, for every report."""
from course_utils.hardware import read_cpu_flags, read_cpu_name

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni

processor\t: 1
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni
"""
ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd asimddp i8mm
"""


def test_name_and_flags_come_from_the_first_cpu():
    """Are the model name and the flags read from /proc/cpuinfo text (x86 and Arm)?"""
    assert read_cpu_name(X86) == "AMD EPYC 9R14 96-Core Processor"
    assert {"avx2", "avx512_vnni"} <= read_cpu_flags(X86)
    assert read_cpu_flags(ARM) == {"fp", "asimd", "asimddp", "i8mm"}


def test_no_cpuinfo_still_names_the_cpu():
    """Without a model name line (Arm, or no /proc at all), is there still a name and no flags?"""
    assert read_cpu_name(ARM)  # falls back to platform's processor or machine name
    assert read_cpu_flags("") == set()


def _peak(vendor, family, flags=("avx", "avx2", "fma", "avx512f")):
    from course_utils.hardware import theoretical_peak

    return theoretical_peak({"flags": {f: True for f in flags}, "physical_cores": 2, "clock_ghz": 3.0,
                             "clock_source": "a test", "vendor": vendor, "family": family})


def test_zen4_counts_its_512_bit_fmas_at_half_rate():
    """AMD family 25 with AVX-512 (Zen 4) splits 512-bit FMAs: is its peak the 256-bit one, said so?"""
    zen4, intel = _peak("AuthenticAMD", 25), _peak("GenuineIntel", 6)
    assert zen4["gflops"] == _peak("AuthenticAMD", 25, ("avx", "avx2", "fma"))["gflops"] == intel["gflops"] / 2
    assert any("Zen 4" in a and "half rate" in a for a in zen4["assumptions"])
    assert any("GenuineIntel family 6" in a for a in intel["assumptions"])
    assert all(any("assumed" in a for a in p["assumptions"]) for p in (zen4, intel))  # FMA units


def test_vendor_and_family_are_read_from_cpuinfo(monkeypatch):
    """Does the hardware record carry the vendor and family of /proc/cpuinfo's first CPU?"""
    from course_utils import hardware

    monkeypatch.setattr(hardware, "read_cpuinfo", lambda: X86.replace(
        "vendor_id\t: AuthenticAMD\n", "vendor_id\t: AuthenticAMD\ncpu family\t: 25\n", 1))
    record = hardware.describe_hardware()
    assert (record["vendor"], record["family"]) == ("AuthenticAMD", 25)


def test_the_machine_record_names_the_lessons_instruction_sets():
    """Does the machine record say, by name, which of the instruction sets the lessons use this CPU has?"""
    from course_utils.hardware import format_machine, machine_record

    x86 = machine_record(X86)
    assert x86["cpu"] == "AMD EPYC 9R14 96-Core Processor"
    assert x86["flags"] == {"AVX2": True, "FMA": True, "AVX-512": True, "AVX-512 VNNI": True,
                            "AVX-VNNI": False, "AVX-512 bf16": False, "AMX": False}
    assert machine_record(ARM)["flags"] == {"NEON": True, "dot product": True, "i8mm": True,
                                           "bf16": False, "SVE": False}
    text = format_machine(x86).splitlines()
    assert text[0].startswith("CPU: AMD EPYC 9R14 96-Core Processor (") and "logical cores" in text[0]
    assert text[1].startswith("instruction sets: AVX2 yes, FMA yes, AVX-512 yes, AVX-512 VNNI yes")
    assert "torch " in text[2] and "onnxruntime" in text[2]  # the versions the numbers depend on


def test_the_machine_record_without_cpuinfo_says_so():
    """Without /proc/cpuinfo (macOS, Windows), does the record say the flags are unreadable, not 'no'?"""
    from course_utils.hardware import format_machine, machine_record

    record = machine_record("")
    assert record["flags"] is None
    assert "instruction sets: not readable on this system" in format_machine(record)
