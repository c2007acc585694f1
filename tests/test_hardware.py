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
