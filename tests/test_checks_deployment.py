"""Tests for the checks of notebook 05: course_utils/exercise_checks/deployment.py and
course_utils/grading/hidden_checks/deployment.py.

The cases (right answers, a wrong answer for every check, the alternative answers) are declared
in ``CASES`` of the hidden check module; ``check_support`` turns them into the tests imported
here, each answer graded as the grader grades it: 05.1's predict function is called across the
grader's boundary, 05.4's file is copied out of the work folder.
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

TOPIC = "deployment"
