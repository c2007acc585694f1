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
from course_utils.exercise_checks.export import model_fact_probes, true_model_facts
from course_utils.grading.hidden_checks.export import export_files

TOPIC = "export"


def test_probe_models_differ_from_the_digits_model_in_every_fact():
    """Does each model 02.6's function is tried on differ from the digits model in every fact,
    so that facts typed in from the digits model's summary fail on each of them?"""
    import onnx

    digits = true_model_facts(onnx.load(str(export_files(context())["digits"])))
    for probe in model_fact_probes():
        facts = true_model_facts(probe)
        assert all(facts[key] != digits[key] for key in digits), (facts, digits)
