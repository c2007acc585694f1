"""Are sizes in SI units, the same way in every report?"""
import pytest

from course_utils.formatting import format_size, format_table


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (48_700, "48.7 kB"),
                                     (46_800_000, "46.8 MB"), (2_147_483_648, "2.1 GB")])
def test_sizes_are_si(n, text):
    """Is each size printed with 10**3 steps (kB, MB, GB), as the notebooks count?"""
    assert format_size(n) == text


def test_table_pads_columns_but_not_a_left_aligned_last_one():
    """Are columns aligned as asked, the rule as wide as the header, the last column unpadded?"""
    lines = format_table(["op type", "ms", "note"],
                         [["Conv", "12.50", "fused"], ["Add", "0.10", "x"]],
                         align="<><", gap="  ", rule="-")
    assert lines == ["op type     ms  note", "--------------------", "Conv     12.50  fused",
                     "Add       0.10  x"]


def test_table_keeps_overlong_cells_and_refuses_a_wrong_alignment():
    """Does a cell wider than its column stay whole, and is a wrong ``align`` named?"""
    assert format_table(["n"], [["12345"]], align=">", widths=[3]) == ["  n", "12345"]
    with pytest.raises(ValueError, match="align has 1 characters for 2 columns"):
        format_table(["a", "b"], [], align="<")
