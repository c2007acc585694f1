"""Tests for the checks of notebook 02: course_utils/exercise_checks/export.py and
course_utils/grading/hidden_checks/export.py.

The cases (right answers, a wrong answer for every check, the alternative answers) are declared
in ``CASES`` of the hidden check module; ``check_support`` turns them into the tests imported
here, each answer graded as the grader grades it: files are copied out of the work folder,
02.4's function is called across the data boundary. The right answers are made as the notebook
makes them (resnet18 and the trained digits CNN, exported once per test session); most wrong
answers are those files edited to have exactly one thing wrong.
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
from course_utils.grading.hidden_checks.export import model_facts

TOPIC = "export"


def test_model_facts_are_those_the_checks_expect():
    """Does the digits model exported here have the facts the checks hard-code (9930 float
    parameters, 2 Conv, 2 Relu, 1 Gemm, 1 MaxPool, a 'batch' dimension, input 'x')?"""
    facts = model_facts(context())
    assert facts["parameters"] == 9930 and facts["batch_dim"] == "batch" and facts["input_name"] == "x"
    assert {op: facts["op_counts"].get(op) for op in ("Conv", "Relu", "Gemm", "MaxPool")} == {
        "Conv": 2, "Relu": 2, "Gemm": 1, "MaxPool": 1}
