"""Tests for course_utils/session_count.py: counting the ONNX Runtime sessions code creates."""
import threading

import numpy as np
import onnxruntime as ort
import pytest

from course_utils.exercise_checks.deployment import make_tiny_model_bytes
from course_utils.session_count import count_sessions

FEED = {"x": np.ones((1, 2), np.float32)}


def _session(options=None):
    return ort.InferenceSession(make_tiny_model_bytes(), options, providers=["CPUExecutionProvider"])


def test_sessions_created_and_runs_are_counted_with_their_settings():
    """Are the sessions made inside the block counted, each with its runs, providers and options?"""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with count_sessions() as seen:
        first, second = _session(options), _session()
        for _ in range(3):
            first.run(None, FEED)
        out = second.run(None, FEED)
    assert seen.created == 2 and seen.runs == 4
    assert [s.runs for s in seen.sessions] == [3, 1]
    assert seen.sessions[0].providers == ["CPUExecutionProvider"]
    assert (seen.sessions[0].intra_op_threads, seen.sessions[0].spinning) == (1, "0")
    assert seen.sessions[1].spinning is None  # never set
    assert np.array_equal(seen.last_output, out[0]) and seen.last_session == 2


def test_a_session_from_before_is_run_but_not_created():
    """Does a session created before the block (or in an earlier block) count as a run only?"""
    earlier = _session()
    with count_sessions() as first_block:
        from_first = _session()
    with count_sessions() as seen:
        earlier.run(None, FEED)
        from_first.run(None, FEED)
        _session()  # numbered 1 in this block, as from_first was in the first one
    assert first_block.created == 1 and seen.created == 1
    assert seen.runs == 2 and seen.runs_of_others == 2 and seen.sessions[0].runs == 0


def test_the_class_is_restored_after_an_error():
    """After the block, even one that raised, is InferenceSession untouched (nothing counted)?"""
    init, run = ort.InferenceSession.__init__, ort.InferenceSession.run
    with pytest.raises(ZeroDivisionError), count_sessions():
        _session().run(None, FEED)
        1 / 0
    assert ort.InferenceSession.__init__ is init and ort.InferenceSession.run is run
    assert "run" not in ort.InferenceSession.__dict__  # inherited again, as before


def test_runs_from_other_threads_are_counted():
    """Are runs made on worker threads (a server's thread pool) all counted?"""
    with count_sessions() as seen:
        session = _session()
        threads = [threading.Thread(target=lambda: [session.run(None, FEED) for _ in range(25)])
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert seen.sessions[0].runs == 100
