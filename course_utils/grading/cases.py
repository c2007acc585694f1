"""Each exercise's test data, declared beside its hidden checks: the vocabulary and its context.

Covers: the form in which ``hidden_checks/<topic>.py`` declares, in a module-level ``CASES``
list, what its exercises are tested with: right answers written other ways than the
reference (:class:`Right`), wrong answers that each name the one check that must refuse them
and the feedback it must give (:class:`Wrong`), the words a public hint must never show, and
the alternative answer (the code a student types in place of the exercise's
``raise NotImplementedError`` line). Answers are plain values, or :func:`built` from a
:class:`Context` (a work folder, resnet18 exported, the trained digits CNN, what a session uses
on this machine...) whose items are built on first use and kept for the process. The tests
(``tests/check_support.py``, ``tests/test_alternative_answers.py``) collect and run these.
Does not cover: running checks or grading (``verdicts.py``, ``grader.py``); nothing here runs
at grading time (importing this module imports only the standard library).

Example, in ``hidden_checks/providers.py``::

    CASES = [
        Cases("01.4",
              alternative='''def choose_providers(wanted, available):
        ...''',
              right=[Right("dict-fromkeys", choose_providers)],
              wrong=[Wrong("keeps-duplicates", keeps_duplicates, "providers:_each_name_once",
                           "choose_providers("),
                     Wrong("a-string", lambda wanted, available: ",".join(wanted),
                           "providers:_keeps_what_is_available", "choose_providers returned str")],
              answer_words=["get_all_providers"]),
    ]
"""
from __future__ import annotations

import atexit
import functools
import importlib
import pkgutil
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["Cases", "Right", "Wrong", "Built", "built", "resolve", "Context", "context_item", "topic_cases",
           "all_cases", "edited_onnx", "resnet18_model", "resnet18_onnx", "digits_cnn", "providers_used"]

_EXERCISE = re.compile(r"^\d\d\.\d+$")
_CHECK = re.compile(r"^\w+:\w+$")
_ID = re.compile(r"^[\w.+-]+$")


@dataclass(frozen=True)
class Built:
    """An answer (or a list of words) made from the context when a test needs it: ``fn(context)``."""

    fn: Callable[["Context"], Any]

    def __call__(self, context: "Context"):
        return self.fn(context)


def built(fn: Callable[["Context"], Any]) -> Built:
    """Mark ``fn(context)`` as the maker of an answer; usable as a decorator.

    A bare callable is an answer itself (a function answer); wrapped, it is called with the
    test's :class:`Context` and its result is the answer.
    """
    return fn if isinstance(fn, Built) else Built(fn)


def resolve(value, context: "Context"):
    """``value`` itself, or what it builds from ``context`` when it is :func:`built`."""
    return value(context) if isinstance(value, Built) else value


def _checked_id(id: str, what: str) -> str:
    if not isinstance(id, str) or not _ID.match(id):
        raise ValueError(f"{what} needs a short id of letters, digits and - . + (it names the test), "
                         f"got {id!r}")
    return id


@dataclass(frozen=True)
class Right:
    """A right answer: it must pass every check of its exercise, public and hidden."""

    id: str
    answer: Any

    def __post_init__(self):
        _checked_id(self.id, "Right")


@dataclass(frozen=True)
class Wrong:
    """A wrong answer that exactly one check must refuse, with the feedback it must give.

    Args:
        id: a short name for the test (``"keeps-duplicates"``; the test id adds the exercise).
        answer: the answer, or :func:`built` from the context.
        check: ``"module:function"`` of the check that must refuse it, public or hidden
            (``"providers:_each_name_once"``): the first check of the exercise to fail.
        feedback: a hidden check's feedback starts with this; a public check's hint contains it.
        answer_words: words this public hint must not show, besides the exercise's own.
        skip: ``skip(context)`` gives a reason to skip the test on this machine, or None.
    """

    id: str
    answer: Any
    check: str
    feedback: str
    answer_words: Any = ()
    skip: Callable[["Context"], str | None] | None = None

    def __post_init__(self):
        _checked_id(self.id, "Wrong")
        if not isinstance(self.check, str) or not _CHECK.match(self.check):
            raise ValueError(f"Wrong({self.id!r}): name the check as 'module:function' "
                             f"(e.g. 'providers:_each_name_once'), got {self.check!r}")
        if not self.feedback:
            raise ValueError(f"Wrong({self.id!r}): give the start of the feedback the check must give")


@dataclass(frozen=True)
class Cases:
    """One exercise's test data.

    Args:
        exercise: its id, e.g. ``"01.4"``.
        right: right answers, each passing every check (at least one per exercise).
        wrong: wrong answers; every check of the exercise needs at least one.
        alternative: the code a student might type in place of the cell's
            ``raise NotImplementedError(...)`` line, written otherwise than the reference;
            required for every exercise after a notebook's first, which stays unsolved in the
            run that grades these through the sandbox.
        answer_words: words that no public hint of this exercise may show (the answer's own).
    """

    exercise: str
    right: list = field(default_factory=list)
    wrong: list = field(default_factory=list)
    alternative: str | None = None
    answer_words: Any = ()

    def __post_init__(self):
        if not _EXERCISE.match(str(self.exercise)):
            raise ValueError(f"Cases: an exercise id looks like '01.4', got {self.exercise!r}")
        for kind, items in (("right", self.right), ("wrong", self.wrong)):
            expected = Right if kind == "right" else Wrong
            for item in items:
                if not isinstance(item, expected):
                    raise TypeError(f"Cases({self.exercise!r}): each {kind} answer is a "
                                    f"{expected.__name__}(...), got {type(item).__name__}")
            ids = [item.id for item in items]
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"Cases({self.exercise!r}): the {kind} ids {twice} are used twice")

    @property
    def notebook(self) -> str:
        """The notebook number, e.g. ``"01"``."""
        return self.exercise.split(".")[0]


# ------------------------------------------------------------------ where the cases are

def topic_cases(topic: str) -> list[Cases]:
    """The ``CASES`` of ``hidden_checks/<topic>.py``, each exercise once."""
    module = importlib.import_module(f"{__package__}.hidden_checks.{topic}")
    cases = getattr(module, "CASES", None)
    if not isinstance(cases, list) or not all(isinstance(c, Cases) for c in cases):
        raise TypeError(f"course_utils/grading/hidden_checks/{topic}.py needs a list CASES of "
                        "Cases(...), one per exercise (see course_utils/grading/cases.py)")
    ids = [c.exercise for c in cases]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"hidden_checks/{topic}.py declares Cases for {twice} twice; merge them")
    return cases


def all_cases() -> dict[str, Cases]:
    """Exercise id -> its cases, from every module of ``hidden_checks/``."""
    from . import hidden_checks

    found = {}
    for info in pkgutil.iter_modules(hidden_checks.__path__):
        for cases in topic_cases(info.name):
            found[cases.exercise] = cases
    return found


# ------------------------------------------------------------------ the context answers are built from

class Context:
    """What test answers are built from: one work folder and the items built in it, each once.

    The work folder stands for the notebook's folder: file answers live in it, and a
    relative path in an answer is relative to it. It is a temporary folder, removed when
    the process ends. Items are made by functions decorated with :func:`context_item`.
    """

    def __init__(self, folder: Path | str | None = None):
        self._folder = Path(folder) if folder is not None else None
        self._items: dict = {}

    @property
    def folder(self) -> Path:
        """The work folder (created on first use)."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="course-cases-"))
            atexit.register(shutil.rmtree, self._folder, True)
        return self._folder

    def subfolder(self, name: str) -> Path:
        """A folder inside the work folder, for one topic's files."""
        path = self.folder / name
        path.mkdir(exist_ok=True)
        return path


def context_item(fn: Callable) -> Callable:
    """Make ``fn(context, *args)`` an item of the context: built on first use, then kept."""
    @functools.wraps(fn)
    def item(context: Context, *args):
        key = (fn.__module__, fn.__qualname__, args)
        if key not in context._items:
            context._items[key] = fn(context, *args)
        return context._items[key]
    return item


def edited_onnx(source: Path, target: Path, *edits) -> Path:
    """A copy of the ONNX file ``source`` at ``target`` with ``edits`` (functions of the ModelProto) applied."""
    import onnx

    model = onnx.load(str(source))
    for edit in edits:
        edit(model)
    onnx.save(model, str(target))
    return target


@context_item
def resnet18_model(context: Context):
    """``(model, example)``: resnet18 with random weights (seed 0), in eval mode, and a batch of 2 images."""
    import torch
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18().eval(), torch.randn(2, 3, 224, 224)  # (2, 3, 224, 224)


@context_item
def resnet18_onnx(context: Context) -> Path:
    """resnet18 exported as notebooks 02 and 03 export it: dynamo, a dynamic batch named "batch", one file."""
    import torch

    model, example = resnet18_model(context)
    path = context.folder / "resnet18.onnx"
    torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False, verbose=False,
                      dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    return path


@context_item
def digits_cnn(context: Context, epochs: int = 15):
    """The digits CNN trained for ``epochs`` (``digits.train_digits_cnn``)."""
    from ..digits import train_digits_cnn

    return train_digits_cnn(epochs=epochs)


@context_item
def providers_used(context: Context) -> list:
    """What a session asked for CUDA then CPU really uses on this machine (found here, not by a check)."""
    import io
    import warnings

    import onnxruntime as ort
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(torch.nn.Linear(2, 2).eval(), (torch.randn(2, 2),), buffer, dynamo=False)
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    requested = [p for p in wanted if p in ort.get_available_providers()]
    return ort.InferenceSession(buffer.getvalue(), providers=requested).get_providers()
