"""Feedback once a reference solution has run in a kernel: the checks' own words, nothing of the answer.

Covers: :func:`withhold`, which reduces a verdict's feedback to the fixed words of the
message that produced it. Every string literal and f-string in the modules that word
feedback (the checks, public and hidden; the answers' decoding; the verdicts) is a
*template*: its literal text, with a hole where it interpolates a value. A feedback that
a template matches is given back as that template's literal text, each hole shown as
``…``; a feedback no template matches becomes one fixed sentence. So whatever a kernel
that has seen a reference puts in its answer (a string, a type's name, a path, a number,
an exception's message, a facts entry), none of it reaches the feedback: only which of
the course's own messages applies. Does not cover: when feedback is withheld
(``verdicts.py`` decides, from the grader's record of what ran in the kernel).

Matching reads each template's fragments left to right with ``str.find`` (no regular
expression): linear in the feedback's length for each template.
"""
from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
from pathlib import Path

__all__ = ["withhold", "WITHHELD"]

#: What feedback says when no message of the course's matches it.
WITHHELD = ("the checks did not pass (the details are withheld: a reference solution ran in this "
            "kernel before the answer was read, so nothing of the answer is quoted)")
HOLE = "\u2026"
_MIN_LITERAL = 12  # a template must fix at least this many characters to be worth matching
_SOURCES = ("course_utils.checks", "course_utils.answers", "course_utils.grading.verdicts",
            "course_utils.exercise_checks", "course_utils.grading.hidden_checks")


def _constant(node, names: dict):
    """The text of a string constant, or of a module-level name bound to one (NOT_ATTEMPTED)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.FormattedValue) and node.conversion == -1 and node.format_spec is None:
        return _constant(node.value, names)
    if isinstance(node, ast.Name):
        return names.get(node.id)
    return None


def _parts(node, names: dict) -> list | None:
    """A string expression as [literal or None (a hole), ...], or None if it is not one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [_constant(value, names) for value in node.values]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _parts(node.left, names), _parts(node.right, names)
        if left is None and right is None:
            return None
        return (left or [None]) + (right or [None])
    return None


def _normalise(parts: list) -> tuple:
    """Merge neighbouring literals and holes: (starts with a hole, literals..., ends with a hole)."""
    merged: list = []
    for part in parts:
        if part is None:
            if not merged or merged[-1] is not None:
                merged.append(None)
        elif part:
            if merged and merged[-1] is not None:
                merged[-1] += part
            else:
                merged.append(part)
    literals = tuple(p for p in merged if p is not None)
    return (bool(merged) and merged[0] is None, literals, bool(merged) and merged[-1] is None)


def _module_files() -> list[Path]:
    files = []
    for name in _SOURCES:
        module = importlib.import_module(name)
        if hasattr(module, "__path__"):
            files += [Path(module.__path__[0]) / f"{info.name}.py" for info in pkgutil.iter_modules(module.__path__)]
        else:
            files.append(Path(module.__file__))
    return [f for f in files if f.is_file()]


@functools.lru_cache(maxsize=1)
def templates() -> tuple:
    """Every template of the course's feedback, longest literal text first."""
    found = set()
    for path in _module_files():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        names = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
        for node in ast.walk(tree):
            parts = _parts(node, names)
            if parts is None:
                continue
            template = _normalise(parts)
            if sum(map(len, template[1])) >= _MIN_LITERAL:
                found.add(template)
    return tuple(sorted(found, key=lambda t: (-sum(map(len, t[1])), t)))


def _matches(template: tuple, text: str) -> bool:
    starts_open, literals, ends_open = template
    position = 0
    for index, literal in enumerate(literals):
        last = index == len(literals) - 1
        if index == 0 and not starts_open:
            if not text.startswith(literal):
                return False
            position = len(literal)
            if last and not ends_open:
                return position == len(text)
            continue
        if last and not ends_open:
            return text.endswith(literal) and len(text) - len(literal) >= position
        found = text.find(literal, position)
        if found < 0:
            return False
        position = found + len(literal)
    return True


def _render(template: tuple) -> str:
    starts_open, literals, ends_open = template
    return (HOLE if starts_open else "") + HOLE.join(literals) + (HOLE if ends_open else "")


def withhold(feedback: str) -> str:
    """The fixed words of the course's message that ``feedback`` is, or :data:`WITHHELD`.

    Example:
        >>> withhold("the dict lacks the key(s) ['secret reference code']")
        'the dict lacks the key(s) …'
    """
    text = str(feedback)
    for template in templates():
        if _matches(template, text):
            return _render(template)
    return WITHHELD
