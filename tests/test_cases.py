"""Tests for course_utils/grading/cases.py: the form of each exercise's test data and its context."""
import pytest

from course_utils.grading.cases import Cases, Context, Right, Wrong, all_cases, built, context_item, resolve


def test_a_malformed_case_is_refused_with_what_to_write():
    """Are a check not named 'module:function', an id that cannot name a test, a missing feedback,
    a bare answer in a list and an id used twice each refused, saying what is expected?"""
    with pytest.raises(ValueError, match="'module:function'"):
        Wrong("no-module", [], "_priority", "a hint")
    with pytest.raises(ValueError, match="short id"):
        Wrong("two words", [], "providers:_priority", "a hint")
    with pytest.raises(ValueError, match="start of the feedback"):
        Wrong("no-feedback", [], "providers:_priority", "")
    with pytest.raises(TypeError, match=r"each right answer is a Right\(...\)"):
        Cases("01.2", right=[["CPUExecutionProvider"]])
    with pytest.raises(ValueError, match=r"the wrong ids \['same'\] are used twice"):
        Cases("01.2", wrong=[Wrong("same", [], "providers:_priority", "a"),
                             Wrong("same", [1], "providers:_priority", "b")])
    with pytest.raises(ValueError, match="looks like '01.4'"):
        Cases("1.2")


def test_built_answers_are_made_from_the_context_and_functions_stay_answers():
    """Is a built(...) answer made from the context, while a bare function is the answer itself?"""
    def choose(wanted, available):
        return wanted

    context = Context()
    assert resolve(built(lambda c: c.folder.is_dir()), context) is True
    assert resolve(choose, context) is choose and resolve([1, 2], context) == [1, 2]
    assert built(built(choose)).fn is choose  # wrapping twice changes nothing


def test_a_context_item_is_built_once_per_context_and_arguments(tmp_path):
    """Is an item built on first use, kept for later uses, and built again only for other arguments
    or another context?"""
    calls = []

    @context_item
    def model(context, size=1):
        calls.append(size)
        return [size] * size

    first = Context(tmp_path)
    assert model(first) is model(first) and model(first, 2) == [2, 2] and model(first, 2) is model(first, 2)
    assert model(Context(tmp_path)) == [1] and calls == [1, 2, 1]
    assert first.folder == tmp_path and first.subfolder("graphs").is_dir()


def test_every_hidden_check_module_declares_its_cases():
    """Does every module of hidden_checks/ declare CASES, each exercise once and with a right answer?"""
    found = all_cases()
    assert found and all(e == c.exercise and c.right for e, c in found.items())
    assert all(isinstance(r, Right) for c in found.values() for r in c.right)
