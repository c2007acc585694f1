"""Tests for the checks of notebook 00: course_utils/exercise_checks/install.py and
course_utils/grading/hidden_checks/install.py.

The cases (right answers, a wrong answer for every check, the alternative answers) are declared
in ``CASES`` of the hidden check module; ``check_support`` turns them into the tests imported
here, each answer graded as the grader grades it. The onnxruntime-gpu layout is tested in
test_exercise_checks_gpu_build.py.
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

TOPIC = "install"
