"""Count the ONNX Runtime sessions a piece of code creates, and the runs each one makes.

Covers: :func:`count_sessions`, a context manager that watches every
``onnxruntime.InferenceSession`` created inside it (directly, through
``course_utils.make_session`` or a subclass) and every call of its ``run``
methods, from any thread, and records plain facts about each session (its
providers, intra-op threads and spinning setting). A server that loads its
models once shows it here: sessions created at start-up, none while serving.
Does not cover: making sessions (``sessions.py``), nor serving (``serving.py``).

While the block runs, the watched methods are wrapped on the ``InferenceSession``
class itself and put back when it ends, even after an exception.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

__all__ = ["count_sessions", "SessionCount", "SessionSeen"]

_RUN_METHODS = ("run", "run_with_ort_values", "run_with_iobinding")
_NUMBER = "_course_session_number"  # set on each session created while watched


@dataclass
class SessionSeen:
    """One session created while watched: its number (from 1) and its settings."""

    number: int
    providers: list[str]
    intra_op_threads: int | None
    spinning: str | None  # "session.intra_op.allow_spinning", None when not set
    runs: int = 0


@dataclass
class SessionCount:
    """What :func:`count_sessions` saw: the sessions created, in order, and their runs.

    ``runs_of_others`` counts runs of sessions created before the block began;
    ``last_output`` is the first output of the latest ``run`` call (None before one).
    """

    sessions: list[SessionSeen] = field(default_factory=list)
    runs_of_others: int = 0
    last_output: object = None
    last_session: int | None = None  # the number of the session that ran last (None: one from before)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def created(self) -> int:
        """How many sessions were created."""
        return len(self.sessions)

    @property
    def runs(self) -> int:
        """How many runs all sessions made, those created before the block included."""
        return self.runs_of_others + sum(s.runs for s in self.sessions)


def _settings(session) -> tuple[list[str], int | None, str | None]:
    try:
        providers = [str(p) for p in session.get_providers()]
    except Exception:  # a session whose creation failed half-way
        providers = []
    try:
        options = session.get_session_options()
        threads = int(options.intra_op_num_threads)
    except Exception:
        return providers, None, None
    try:
        spinning = str(options.get_session_config_entry("session.intra_op.allow_spinning"))
    except Exception:  # an entry never set raises
        spinning = None
    return providers, threads, spinning


@contextlib.contextmanager
def count_sessions():
    """Watch the ONNX Runtime sessions created, and their runs, inside a ``with`` block.

    Yields:
        A :class:`SessionCount`, filled in as sessions are created and run.

    Example:
        >>> import onnxruntime as ort
        >>> with count_sessions() as seen:  # doctest: +SKIP
        ...     session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
        ...     session.run(None, feed)
        >>> seen.created, seen.runs  # doctest: +SKIP
        (1, 1)
    """
    import onnxruntime as ort

    cls = ort.InferenceSession
    count, block = SessionCount(), object()  # block: which watch numbered a session
    own = {name for name in ("__init__", *_RUN_METHODS) if name in cls.__dict__}  # the rest is inherited
    originals = {name: getattr(cls, name) for name in ("__init__", *_RUN_METHODS) if hasattr(cls, name)}

    def init(self, *args, **kwargs):
        originals["__init__"](self, *args, **kwargs)
        with count._lock:
            number = len(count.sessions) + 1
            count.sessions.append(SessionSeen(number, *_settings(self)))
        setattr(self, _NUMBER, (block, number))

    def watched(name):
        def run(self, *args, **kwargs):
            result = originals[name](self, *args, **kwargs)
            owner, number = self.__dict__.get(_NUMBER) or (None, 0)
            with count._lock:
                seen = count.sessions[number - 1] if owner is block else None
                if seen is not None:
                    seen.runs += 1
                else:
                    count.runs_of_others += 1
                count.last_session = seen.number if seen is not None else None
                count.last_output = result[0] if name == "run" and result else None
            return result
        return run

    cls.__init__ = init
    for name in _RUN_METHODS:
        if name in originals:  # wrapped on InferenceSession, whichever class defines it
            setattr(cls, name, watched(name))
    try:
        yield count
    finally:
        for name, method in originals.items():
            if name in own:
                setattr(cls, name, method)
            else:
                delattr(cls, name)
