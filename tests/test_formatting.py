"""Are sizes in SI units and tables aligned, the same way in every report?"""
import pytest

from course_utils.formatting import format_size, format_table


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (48_700, "48.7 kB"),
                                     (46_800_000, "46.8 MB"), (2_147_483_648, "2.1 GB")])
def test_sizes_are_si(n, text):
    """Is each size printed with 10**3 steps (kB, MB, GB), as the notebooks count?"""
    assert format_size(n) == text


def test_table_aligns_numbers_right_and_text_left():
    """Are text columns left-aligned, number columns right-aligned, widths from the widest cell?"""
    table = format_table(["op", "count"], [["Conv", 20], ["MatMul", 1]]).splitlines()
    assert table == ["op      count", "Conv       20", "MatMul      1"]
