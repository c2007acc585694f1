"""Answers as data: what each exercise hands to its checks, in a form that carries no code.

Covers: the declaration of each exercise's answer (``register_answer``), turning a
live answer into plain data (JSON-able values, numpy arrays, files inside the
work folder, for a function the fact that it is one), and turning that data back
into the values the checks receive. The student's ``check()`` and the grader use
the same path, so a check sees the same kind of value in both places; the grader
runs the kernel-side half inside the sandbox and the rest in its own process.
Does not cover: the checks themselves (``exercise_checks/``), running a
notebook (``grading/grader.py``, ``grading/sandbox.py``).

Only these reach the checks: ``None``, bool, int, float, str, list, tuple,
dict, set, numpy arrays of plain dtypes, :class:`pathlib.Path` to a copied
file, :class:`Facts` (named plain facts about a live object), an opaque
placeholder whose type has the name of the student's type, and for a function
answer a callable whose calls the grader answers by calling the student's
function on inputs chosen at grading time.
"""
from __future__ import annotations

import importlib
import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import CourseError

__all__ = ["register_answer", "AnswerSpec", "Facts", "Opaque", "ScriptedWork", "RemoteWork", "ScriptAnswers",
           "encode", "decode", "capture", "probe", "ANSWER_FILE", "WORK_PROMPT", "CaptureError"]

#: The JSON file a capture writes into its output folder.
ANSWER_FILE = "answer.json"
#: Files and arrays larger than this are refused (bytes).
MAX_ARRAY_BYTES = 64 * 2**20
_MAX_DEPTH = 20
_MAX_ITEMS = 200_000

_ANSWERS: dict[str, "AnswerSpec"] = {}


class CaptureError(CourseError, ValueError):
    """An answer that cannot be turned into data; the message is a hint for the student."""


@dataclass(frozen=True)
class AnswerSpec:
    """How one exercise's answer is captured.

    ``variable`` is the name the exercise cell assigns; ``kind`` is ``"data"``,
    ``"file"`` or ``"function"``; ``extract`` (optional, "module:function") turns
    a live object into facts inside the student's process.
    """

    exercise: str
    variable: str
    kind: str = "data"
    extract: str | None = None


def register_answer(exercise_id: str, variable: str, kind: str = "data",
                    extract: Callable[[Any], Any] | None = None) -> None:
    """Declare which variable holds an exercise's answer and how it is captured.

    Args:
        exercise_id: e.g. ``"02.1"``.
        variable: the name the exercise cell assigns, e.g. ``"resnet_path"``.
        kind: ``"data"`` (plain values and arrays), ``"file"`` (a path inside
            the notebook's folder; the file is copied out) or ``"function"``
            (the checks call it; the grader runs each call in the student's kernel).
        extract: a function of the live answer that returns plain facts (run in
            the student's process right after the cell), for objects such as
            ``onnxruntime.SessionOptions``.
    """
    if kind not in ("data", "file", "function"):
        raise ValueError(f"unknown answer kind {kind!r}; use 'data', 'file' or 'function'")
    where = f"{extract.__module__}:{extract.__qualname__}" if extract else None
    _ANSWERS[exercise_id] = AnswerSpec(exercise_id, variable, kind, where)


def answer_spec(exercise_id: str) -> AnswerSpec:
    """The declared answer of an exercise (``checks.load_check_modules()`` must have run)."""
    try:
        return _ANSWERS[exercise_id]
    except KeyError:
        raise KeyError(f"exercise {exercise_id!r} declares no answer; add "
                       f"register_answer({exercise_id!r}, 'variable') to its check module") from None


# ------------------------------------------------------------------ decoded values

class Opaque:
    """Stands for an object that is not plain data; its type carries the student's type name."""

    def __repr__(self):
        return f"<{type(self).__name__} object>"


_OPAQUE_TYPES: dict[str, type] = {}


def _opaque(type_name: str, attrs=()) -> Opaque:
    name = str(type_name)[:40] or "object"
    cls = _OPAQUE_TYPES.get(name)
    if cls is None:
        cls = type(name, (Opaque,), {})
        if len(_OPAQUE_TYPES) < 1000:  # a flood of distinct names must not grow the cache
            _OPAQUE_TYPES[name] = cls
    obj = cls()
    for attr in attrs:
        if isinstance(attr, str) and attr.isidentifier() and not attr.startswith("_"):
            setattr(obj, attr, None)
    return obj


class Facts:
    """Plain facts about a live object, read in the student's process (attributes are data)."""

    def __init__(self, kind: str, facts: dict):
        self.kind = kind
        self.__dict__.update(facts)

    def __repr__(self):
        return f"Facts({self.kind!r})"


class SessionOptionsFacts(Facts):
    """What the checks need of an ``onnxruntime.SessionOptions``."""

    def get_session_config_entry(self, key):
        entries = getattr(self, "config", {}) or {}
        if key not in entries:
            raise RuntimeError(f"no config entry {key}")
        return entries[key]


class CapturedPair(tuple):
    """A pair of captured values, with whether they were one object and their types' modules."""

    same_object: bool = False
    modules: tuple = ()


#: The prompt of a scripted call's input request: the grader answers it with the call's cost.
WORK_PROMPT = "course_utils.ScriptedWork"
_WORKS: "weakref.WeakValueDictionary[str, ScriptedWork]" = weakref.WeakValueDictionary()


class ScriptedWork:
    """A callable whose calls cost scripted times on its own clock: what a timer answer is probed with.

    Each call advances ``clock()`` by the next cost of the script (seconds; past the
    end the script starts again), and nothing else: a timer under test sees exact,
    known durations, with no sleep and no wall time involved. It crosses the grader's
    boundary without its script (its token and start time only): in the student's kernel
    it stands as a :class:`RemoteWork`, whose every call asks the grader for that call's
    cost, so nothing the kernel holds tells a cost before the call is made. In one
    process (a student's own ``check()``, the tests) it is the same object on both sides.
    """

    def __init__(self, costs_s, start_s: float = 1000.0, token: str | None = None):
        costs = [float(c) for c in list(costs_s)[:10_000]]
        if not costs or min(costs) < 0:
            raise ValueError("a script needs at least one cost, none negative")
        self._costs, self._start, self._now, self.calls = costs, float(start_s), float(start_s), 0
        self.token = str(token or os.urandom(8).hex())
        self.clock = _ScriptedClock(self)
        _WORKS[self.token] = self

    def __call__(self, *args, **kwargs):
        self._now += self._next_cost()
        self.calls += 1

    def _next_cost(self) -> float:
        return self._costs[self.calls % len(self._costs)]

    def _facts(self):  # what crosses the boundary: never the script
        return {"start_s": self._start, "token": self.token}


class RemoteWork(ScriptedWork):
    """A :class:`ScriptedWork` of the grader's, in the student's kernel: each call asks for its cost.

    The question is an input request of the running cell (``WORK_PROMPT`` and the token),
    which the grader answers with the next cost of the script it keeps; the kernel learns a
    cost only by making the call, exactly as a timer does.
    """

    def __init__(self, token: str, start_s: float):
        self._costs, self._start, self._now, self.calls = [], float(start_s), float(start_s), 0
        self.token = token
        self.clock = _ScriptedClock(self)
        _WORKS[self.token] = self

    def _next_cost(self) -> float:
        from IPython import get_ipython

        shell = get_ipython()
        kernel = getattr(shell, "kernel", None)
        if kernel is None:
            raise CaptureError("scripted work can only be called while the grader probes a function")
        answer = kernel.raw_input(f"{WORK_PROMPT} {self.token}")
        try:
            cost = float(answer)
        except (TypeError, ValueError):
            raise CaptureError("the grader did not answer a scripted call") from None
        if not cost >= 0:
            raise CaptureError("the grader did not answer a scripted call")
        return cost


class _ScriptedClock:
    """The clock of one :class:`ScriptedWork` (seconds, like ``time.perf_counter``)."""

    def __init__(self, work):
        self.work = work

    def __call__(self) -> float:
        return self.work._now


class ScriptAnswers:
    """The grader's side of scripted calls: the scripts of the works a probe hands over, by token.

    :meth:`answer` answers one input request (the next cost of that work's script, as text;
    nothing for any other prompt); :meth:`calls` says how many calls each work received, so
    that the works on the checks' side advance as far (:meth:`advance`).
    """

    def __init__(self, scripts: dict):
        self.scripts = {str(token): ([float(c) for c in costs], int(first))
                        for token, (costs, first) in scripts.items() if costs}
        self.made = {token: 0 for token in self.scripts}

    @staticmethod
    def scripts_of(works: dict) -> dict:
        """token -> (its script, the calls already made): what the party that answers keeps."""
        return {token: (list(w._costs), w.calls) for token, w in works.items() if type(w) is ScriptedWork}

    def answer(self, prompt: str) -> str:
        label, _, token = str(prompt).partition(" ")
        if label != WORK_PROMPT or token not in self.scripts:
            return ""
        costs, first = self.scripts[token]
        cost = costs[(first + self.made[token]) % len(costs)]
        self.made[token] += 1
        return repr(cost)

    def calls(self) -> dict:
        return dict(self.made)

    @staticmethod
    def advance(works: dict, made: dict) -> None:
        """Advance each work by the calls the kernel made of it (``made``: token -> calls)."""
        for token, count in (made or {}).items():
            work = works.get(token)
            if work is not None and isinstance(count, int):
                for _ in range(max(0, min(count, 10**6))):
                    work()


def _rebuilt_work(facts) -> ScriptedWork:
    token = str(facts.get("token") or "")
    work = _WORKS.get(token)
    if work is None:
        try:
            work = RemoteWork(token or os.urandom(8).hex(), float(facts.get("start_s") or 0.0))
        except (TypeError, ValueError):
            raise CaptureError("the captured answer is malformed") from None
    return work


_FACT_TYPES = {"SessionOptions": SessionOptionsFacts, "pair": CapturedPair,
               "ScriptedWork": ScriptedWork, "ScriptedClock": _ScriptedClock}


def pair_facts(value):
    """Extractor: a pair as data, plus whether both entries are one object and their modules."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return value
    first, second = tuple(value)
    return {"$facts": "pair", "v": {"items": (first, second), "same_object": first is second,
                                     "modules": [type(first).__module__ or "",
                                                 type(second).__module__ or ""]}}


def onnx_model_bytes(model):
    """Extractor: an ``onnx.ModelProto`` as its serialized bytes (a uint8 array).

    Anything else is left as it is, so the check can name the type it got.
    """
    if type(model).__name__ != "ModelProto" or not callable(getattr(model, "SerializeToString", None)):
        return model
    import numpy as np

    return np.frombuffer(bytes(model.SerializeToString()), dtype=np.uint8)


def session_options_facts(options):
    """Extractor: the facts of a SessionOptions (run in the student's process)."""
    import onnxruntime as ort

    if not isinstance(options, ort.SessionOptions):
        return options
    config = {}
    from .sessions import SPINNING_KEYS

    for key in SPINNING_KEYS:
        try:
            config[key] = str(options.get_session_config_entry(key))
        except Exception:  # absent entries raise
            pass
    facts = {"intra_op_num_threads": int(options.intra_op_num_threads),
             "inter_op_num_threads": int(options.inter_op_num_threads),
             "execution_mode": str(options.execution_mode).rsplit(".", 1)[-1], "config": config}
    try:
        import torch

        facts["torch_threads"] = int(torch.get_num_threads())
    except Exception:
        facts["torch_threads"] = None
    return {"$facts": "SessionOptions", "v": facts}


# ------------------------------------------------------------------ encoding (student side)

class _Encoder:
    def __init__(self, out_dir: Path | None, workdir: Path, works: dict | None = None):
        self.out_dir, self.workdir, self.arrays, self.items = out_dir, workdir, {}, 0
        self.works = {} if works is None else works  # token -> each ScriptedWork encoded

    def array(self, value):
        import numpy as np

        array = np.asarray(value)
        if array.dtype.hasobject or array.dtype.kind not in "biufcUS":
            return {"$opaque": "ndarray[object]"}
        if array.nbytes > MAX_ARRAY_BYTES:
            raise CaptureError(f"an array of {array.nbytes / 2**20:.0f} MiB is too large to grade")
        name = f"a{len(self.arrays)}.npy"
        self.arrays[name] = array
        return {"$npy": name}

    def __call__(self, value, depth=0):
        self.items += 1
        if depth > _MAX_DEPTH or self.items > _MAX_ITEMS:
            raise CaptureError("the answer is nested too deeply or is too large to grade")
        if value is None or type(value) in (bool, int, float, str):
            return value
        # Subclasses are read through the base type's own methods: whatever they
        # override (__eq__, __iter__, __str__), the data is what the base type holds.
        if isinstance(value, ScriptedWork):
            self.works[value.token] = value
            return {"$facts": "ScriptedWork", "v": self(value._facts(), depth + 1)}
        if isinstance(value, _ScriptedClock):
            self.works[value.work.token] = value.work
            return {"$facts": "ScriptedClock", "v": self(value.work._facts(), depth + 1)}
        if isinstance(value, dict) and value.get("$facts") in _FACT_TYPES and "v" in value:
            return {"$facts": value["$facts"], "v": self(value["v"], depth + 1)}
        if isinstance(value, dict):
            return {"$dict": [[self(k, depth + 1), self(v, depth + 1)]
                              for k, v in list(dict.items(value))]}
        if isinstance(value, list):
            return [self(v, depth + 1) for v in list(list.__iter__(value))]
        if isinstance(value, tuple):
            return {"$tuple": [self(v, depth + 1) for v in tuple.__iter__(value)]}
        if isinstance(value, (set, frozenset)):
            return {"$set": [self(v, depth + 1) for v in list(set.__iter__(value) if isinstance(
                value, set) else frozenset.__iter__(value))]}
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, int):
            return int.__int__(value)
        if isinstance(value, float):
            return float.__float__(value)
        if isinstance(value, Path):
            return {"$path": str(value)}
        module = type(value).__module__ or ""
        if module == "numpy" and type(value).__name__ != "ndarray":  # numpy scalars
            import numpy as np

            if isinstance(value, np.generic) and value.dtype.kind in "biuf":
                return value.item()
        if module == "numpy" and type(value).__name__ == "ndarray":
            return self.array(value)
        if module.startswith("torch") and type(value).__name__ in ("Tensor", "Parameter"):
            return self.array(value.detach().cpu().numpy())
        return {"$opaque": type(value).__name__,
                "attrs": [a for a in ("status_code",) if _has_attr(value, a)]}

    def file(self, value):
        if not isinstance(value, (str, os.PathLike)) or isinstance(value, bytes):
            return self(value)
        given = os.fspath(value)
        if not isinstance(given, str):
            return self(value)
        given = str.__str__(given)
        real = os.path.realpath(given)
        work = os.path.realpath(self.workdir)
        if not os.path.isfile(real):
            return {"$missing_file": given}
        if os.path.commonpath([real, work]) != work:
            return {"$outside_file": given}
        return {"$file": os.path.relpath(real, work), "given": given}


def _has_attr(value, name) -> bool:
    try:
        return hasattr(value, name)
    except Exception:
        return False


def _resolve(dotted: str):
    module, _, name = dotted.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def encode(spec: AnswerSpec, value, out_dir: Path | None = None, workdir: Path | None = None,
           works: dict | None = None):
    """Turn a live answer into (tree, arrays): JSON-able data plus named numpy arrays.

    ``works`` (optional) receives each :class:`ScriptedWork` the value holds, by token: its
    script stays on this side, and only the party that keeps it can answer its calls.
    """
    encoder = _Encoder(out_dir, Path(workdir or os.getcwd()), works)
    if spec.extract:
        value = _resolve(spec.extract)(value)
    if spec.kind == "file":
        tree = encoder.file(value)
    elif spec.kind == "function" and callable(value) and not isinstance(value, type):
        tree = {"$function": spec.variable}
    else:
        tree = encoder(value)
    return tree, encoder.arrays


def write_answer(out_dir: Path, payload: dict, arrays: dict) -> None:
    """Write an answer as ``answer.json`` plus one ``.npy`` per array (what ``decode`` reads)."""
    import numpy as np

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(out_dir / name, array, allow_pickle=False)
    (out_dir / ANSWER_FILE).write_text(json.dumps(payload), encoding="utf-8")


def capture(exercise_id: str, variable: str, kind: str, extract: str | None, out_dir: str) -> None:
    """Run in the student's kernel by the grader, right after the exercise's cell.

    Writes ``answer.json`` (and ``a<N>.npy``) into ``out_dir``; never raises.
    """
    out = Path(out_dir)
    try:
        from IPython import get_ipython

        namespace = get_ipython().user_ns
        if variable not in namespace:
            payload = {"undefined": variable}
            write_answer(out, payload, {})
            return
        spec = AnswerSpec(exercise_id, variable, kind, extract)
        tree, arrays = encode(spec, namespace[variable])
        write_answer(out, {"value": tree}, arrays)
    except CaptureError as error:
        write_answer(out, {"error": str(error)}, {})
    except BaseException as error:  # whatever the answer does, report it as data
        write_answer(out, {"error": f"reading the answer raised {type(error).__name__}"}, {})


def probe(variable: str, in_dir: str, out_dir: str) -> None:
    """Run in the student's kernel by the grader: call the answer on the grader's inputs.

    Reads the inputs from ``in_dir`` (written by the grader) and writes the result
    (or the type of what it raised) into ``out_dir``; never raises.
    """
    out = Path(out_dir)
    try:
        from IPython import get_ipython

        args, kwargs = decode_file(Path(in_dir))
        fn = get_ipython().user_ns[variable]
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            write_answer(out, {"raised": type(error).__name__}, {})
            return
        tree, arrays = encode(AnswerSpec("probe", "result"), result)
        write_answer(out, {"value": tree}, arrays)
    except BaseException as error:
        write_answer(out, {"error": f"{type(error).__name__}"}, {})


# ------------------------------------------------------------------ decoding (checks side)

def decode(tree, load_array: Callable[[str], Any], file_path: Callable[[dict], Any],
           function: Callable[[str], Any] | None = None, depth: int = 0, path: Callable[[str], Any] = Path):
    """Build the value a check receives from a captured tree (no code from the tree runs)."""
    if depth > _MAX_DEPTH + 5:
        raise CaptureError("the answer is nested too deeply")
    again = lambda v: decode(v, load_array, file_path, function, depth + 1, path)  # noqa: E731
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [again(v) for v in tree]
    if not isinstance(tree, dict) or len(tree) == 0:
        raise CaptureError("the captured answer is malformed")
    if "$dict" in tree:
        out = {}
        for pair in tree["$dict"]:
            key = again(pair[0])
            try:
                out[key] = again(pair[1])
            except TypeError:  # an unhashable key
                raise CaptureError("a dict key of the answer is not hashable") from None
        return out
    if "$tuple" in tree:
        return tuple(again(v) for v in tree["$tuple"])
    if "$set" in tree:
        try:
            return {again(v) for v in tree["$set"]}
        except TypeError:
            raise CaptureError("a set in the answer holds unhashable items") from None
    if "$npy" in tree:
        return load_array(str(tree["$npy"]))
    if "$path" in tree:  # a path written into the data (never a file copied out: see $file)
        return path(str(tree["$path"]))
    if "$facts" in tree:
        cls = _FACT_TYPES.get(str(tree["$facts"]), Facts)
        facts = again(tree.get("v"))
        if not isinstance(facts, dict) or not all(isinstance(k, str) for k in facts):
            raise CaptureError("the captured facts are malformed")
        if cls is ScriptedWork:
            return _rebuilt_work(facts)
        if cls is _ScriptedClock:
            return _rebuilt_work(facts).clock
        if cls is CapturedPair:
            pair = CapturedPair(tuple(facts.get("items") or ()))
            pair.same_object = bool(facts.get("same_object"))
            pair.modules = tuple(str(m) for m in facts.get("modules") or ())
            return pair
        return cls(str(tree["$facts"])[:40], facts)  # a kind is a short name (feedback may show it)
    if "$opaque" in tree:
        return _opaque(tree["$opaque"], tree.get("attrs") or ())
    if "$function" in tree:
        if function is None:
            raise CaptureError("a function answer cannot be used here")
        return function(str(tree["$function"]))
    if {"$file", "$missing_file", "$outside_file"} & set(tree):
        return file_path(tree)
    raise CaptureError("the captured answer is malformed")


def _local_arrays(folder: Path):
    import numpy as np

    def load(name):
        if "/" in name or not name.endswith(".npy"):
            raise CaptureError("the captured answer is malformed")
        return np.load(folder / name, allow_pickle=False)
    return load


def decode_file(folder: Path, file_path=None, function=None):
    """Decode ``folder/answer.json`` (written by :func:`write_answer`)."""
    payload = json.loads((folder / ANSWER_FILE).read_text(encoding="utf-8"))
    tree = payload["value"]
    return decode(tree, _local_arrays(folder), file_path or (lambda t: Path(t.get("given") or "")),
                  function)


def prepare(exercise_id: str, value):
    """What the checks receive for a live answer in this process (the student's check())."""
    spec = answer_spec(exercise_id)
    tree, arrays = encode(spec, value)

    def file_path(node):
        if "$file" in node:
            return Path(os.getcwd()) / node["$file"]
        return Path(node.get("$missing_file") or node.get("$outside_file"))

    return decode(tree, arrays.__getitem__, file_path, lambda name: value)
