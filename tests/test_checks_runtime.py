"""Tests for the checks of notebook 04: course_utils/exercise_checks/runtime.py and
course_utils/grading/hidden_checks/runtime.py.

The cases (right answers, a wrong answer for every check, the alternative answers) are declared
in ``CASES`` of the hidden check module; ``check_support`` turns them into the tests imported
here, each answer graded as the grader grades it: 04.1's SessionOptions reaches the checks as the
facts its extractor reads, 04.2's timer is called through the grader's probe on ``ScriptedWork``
(scripted costs on a fake clock: no wall time, no sleep), 04.5's file is copied out and read.
"""
import random
import statistics

import pytest

from check_support import (  # noqa: F401 (pytest collects the tests imported here)
    assert_right,
    context,
    grade_in_context,
    pytest_generate_tests,
    test_alternative_answer_is_other_code_that_parses,
    test_every_check_has_a_wrong_answer,
    test_every_exercise_has_a_right_answer,
    test_right_answer_passes,
    test_wrong_answer_fails_a_public_check_with_a_hint,
    test_wrong_answer_fails_its_hidden_check,
)
from course_utils.exercise_checks import runtime as runtime_checks
from course_utils.grading.hidden_checks.runtime import resnet18_flops, timer

TOPIC = "runtime"


@pytest.fixture(autouse=True)
def seeded_costs(monkeypatch):
    """The timer check draws its costs afresh each time; seeded here so no slip passes by chance."""
    monkeypatch.setattr(runtime_checks, "_new_rng", lambda: random.Random(20))


def test_scripted_work_costs_exactly_its_script():
    """Does each call of ScriptedWork advance its clock by the next scripted cost, and only then?"""
    from course_utils.answers import ScriptedWork

    work = ScriptedWork([0.5, 0.25], start_s=10.0)
    assert work.clock() == 10.0
    work()
    assert work.clock() == 10.5 and work.clock() == 10.5
    work(), work()  # past the end the script starts again
    assert work.clock() == 11.25 and work.calls == 3


def test_resnet18_flops_are_in_the_range_the_check_accepts():
    """Is resnet18's FLOP count, counted layer by layer, 3.63 G (the 1.81 G multiply-adds
    published for it, twice), inside the range 04.4's hidden check accepts?"""
    flops = resnet18_flops(context())
    assert round(flops / 1e7) == 363 and 3.5e9 < flops < 3.8e9


def test_the_timer_is_judged_on_costs_drawn_at_grading_time(tmp_path, monkeypatch):
    """With other costs drawn, does the same right timer pass and a mean-for-median slip fail?"""
    monkeypatch.setattr(runtime_checks, "_new_rng", lambda: random.Random(7))
    assert_right(grade_in_context("04.2", timer(), tmp_path))
    assert not grade_in_context("04.2", timer(median=statistics.fmean), tmp_path).public.passed


def test_an_answer_cannot_bring_its_own_remeasurement():
    """Does 04.3's extractor replace a 'timed_again' written into the answer by what the answer's
    model and session do (here: none given, so the check learns that they are missing)?"""
    planted = {"torch_ms": [30.0, 31.0], "ort_ms": [20.0, 21.0], "speedup": 1.5,
               "timed_again": {"torch_ms": [30.0], "ort_ms": [20.0]}}
    assert runtime_checks.timed_again(planted)["timed_again"] == {"missing": "'model' is NoneType, 'session' is NoneType"}


def test_a_ceiling_is_read_only_from_the_live_object():
    """Does 04.4's extractor keep a Ceiling's record and drop a dict that claims to be one?"""
    from course_utils.roofline import ceiling_from_rates

    ceiling = ceiling_from_rates({("p", 1): [50.0, 49.0]}, 1, cores=1)
    assert runtime_checks.ceiling_facts({"ceiling": ceiling})["ceiling"]["gflops"] == 50.0
    assert runtime_checks.ceiling_facts({"ceiling": ceiling.to_dict()})["ceiling"] is None
