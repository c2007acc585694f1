"""Are sizes in SI units, the same way in every report?"""
import pytest

from course_utils.formatting import format_size


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (48_700, "48.7 kB"),
                                     (46_800_000, "46.8 MB"), (2_147_483_648, "2.1 GB")])
def test_sizes_are_si(n, text):
    """Is each size printed with 10**3 steps (kB, MB, GB), as the notebooks count?"""
    assert format_size(n) == text
