"""Tests for the checks of notebook 01: course_utils/exercise_checks/providers.py and
course_utils/grading/hidden_checks/providers.py.

The cases (right answers, a wrong answer for every check, the alternative answers) are declared
in ``CASES`` of the hidden check module; ``check_support`` turns them into the tests imported
here, each answer graded as the grader grades it (01.4's function is called across the data
boundary, as are 01.3's and 01.5's, called with profiles and device lists the checks make).
"""
from check_support import (  # noqa: F401 (pytest collects the tests imported here)
    pytest_generate_tests,
    test_alternative_answer_is_other_code_that_parses,
    test_every_check_has_a_wrong_answer,
    test_every_exercise_has_a_right_answer,
    test_right_answer_passes,
    test_wrong_answer_fails_a_public_check_with_a_hint,
    test_wrong_answer_fails_its_hidden_check,
)
from course_utils.grading.hidden_checks.providers import CUDA, nvidia_from_the_table

TOPIC = "providers"


def test_the_table_has_three_nvidia_rows():
    """Does the notebook's sentence "several run it on an NVIDIA GPU" hold, with CUDA among them?"""
    assert len(nvidia_from_the_table()) >= 2 and CUDA in nvidia_from_the_table()
