"""Tests for the checks of notebook 03: course_utils/exercise_checks/graphs.py and
course_utils/grading/hidden_checks/graphs.py.

The cases (right answers, a wrong answer for every check, the alternative answers) are declared
in ``CASES`` of the hidden check module; ``check_support`` turns them into the tests imported
here, each answer graded as the grader grades it. The right answers of 03.1 to 03.4 are computed
as the notebook computes them, from a dynamo export of resnet18 optimised by ONNX Runtime at the
extended level.
"""
from check_support import (  # noqa: F401 (pytest collects the tests imported here)
    context,
    pytest_generate_tests,
    test_alternative_answer_is_other_code_that_parses,
    test_every_check_has_a_wrong_answer,
    test_every_exercise_has_a_right_answer,
    test_right_answer_passes,
    test_wrong_answer_fails_a_public_check_with_a_hint,
    test_wrong_answer_fails_its_hidden_check,
)
from course_utils.grading.hidden_checks.graphs import (
    _RESNET18_FUSED_INTO,
    first_conv,
    fused_into,
    original_pairs,
    removed,
    saved_bytes,
)

TOPIC = "graphs"


def test_resnet18_facts_are_those_the_checks_expect():
    """Are the facts computed here those the hidden checks hard-code (7x7 stride 2, 9 Conv+Relu pairs)?"""
    assert first_conv(context()) == {"kernel_shape": [7, 7], "strides": [2, 2], "pads": [3, 3, 3, 3],
                                     "weight_shape": [64, 3, 7, 7]}
    assert fused_into(context()) == original_pairs(context()) == _RESNET18_FUSED_INTO
    assert saved_bytes(context()) == 6_221_824 and len(removed(context())) == 9
