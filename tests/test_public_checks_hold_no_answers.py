"""Do the public checks, shipped to students, hold none of their notebook's answer constants?

The rule (one test per notebook that has a check module):

* **Secret atoms** are the literal strings and numbers that decide a right answer: every literal
  in the reference solution regions of ``notebooks/NN-*.ipynb``, and every literal that the
  hidden check module compares an answer with (an operand of ``==``, ``!=``, ``<``, ``in``, ...,
  element by element for tuples, lists, sets and dicts). A literal that the student can read in
  ``exercises/NN-*.ipynb`` (prose, task texts, given code) is no secret: provider names, the key
  names a task asks for, the letters of the options. Strings count as visible when they occur
  as a whole word; numbers when the same number is written somewhere in the notebook.
* **Secret pairs** are ``"name" -> value`` pairs of literals in the references' dict displays
  and in the hidden checks' comparisons (``answer["opset"] == 20`` or a compared dict), keyed by
  a string: an answer's field. A pair is secret even when both halves are visible, because the
  pairing is the answer (which letter answers which question). Pairs keyed by a number are the
  APIs' axis maps (``{0: "batch"}``), which the task texts spell out, and are not counted.
* A public module ``course_utils/exercise_checks/<topic>.py`` fails when any of its literals
  (outside docstrings and the exercise ids given to ``register`` / ``register_answer``) is a
  secret atom, when a number of two digits or more inside one of its strings (a hint's text) is
  a secret number, or when one of its dict displays or ``x["key"] == value`` comparisons holds a
  secret pair. Module-level names bound to a literal (``CPU = "CPUExecutionProvider"``) are read
  as that literal.

What it does not see: an answer the reference computes (``sum(...)``) and that no hidden check
states; such a number can only be found when the hidden check compares with it.
"""
import ast
import re
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from course_utils.build import parse_exercises, solution_code

PUBLIC = ROOT / "course_utils" / "exercise_checks"
HIDDEN = ROOT / "course_utils" / "grading" / "hidden_checks"
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w])")


def _is_atom(value) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _module_constants(tree) -> dict[str, object]:
    """Module-level ``NAME = literal`` bindings."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and _is_atom(node.value.value):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _value(node, names):
    """The literal a node stands for (a constant or a module-level name bound to one), or None."""
    if isinstance(node, ast.Constant) and _is_atom(node.value):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _value(node.operand, names)
        return -inner if isinstance(inner, (int, float)) else None
    return None


def _atoms_and_pairs(node, names):
    """Literal atoms and key->value pairs inside a display (constant, tuple, list, set, dict)."""
    atoms, pairs = [], []
    value = _value(node, names)
    if value is not None:
        atoms.append(value)
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for element in node.elts:
            a, p = _atoms_and_pairs(element, names)
            atoms += a
            pairs += p
    elif isinstance(node, ast.Dict):
        for key, item in zip(node.keys, node.values):
            k, v = (_value(key, names) if key is not None else None), _value(item, names)
            if k is not None and v is not None:
                pairs.append((k, v))
            a, p = _atoms_and_pairs(item, names)
            atoms += a + ([k] if k is not None else [])
            pairs += p
    return atoms, pairs


def _keyed(node, names):
    """The literal key of ``x["key"]`` or ``x.get("key")``, or None."""
    if isinstance(node, ast.Subscript):
        return _value(node.slice, names)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and node.args):
        return _value(node.args[0], names)
    return None


def _compared(tree, names):
    """Atoms and pairs of every comparison's operands."""
    atoms, pairs = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                a, p = _atoms_and_pairs(operand, names)
                atoms += a
                pairs += p
            for left, right in zip(operands, operands[1:]):
                for keyed, other in ((left, right), (right, left)):
                    key, value = _keyed(keyed, names), _value(other, names)
                    if key is not None and value is not None:
                        pairs.append((key, value))
    return atoms, pairs


def _skipped_nodes(tree) -> set[int]:
    """Docstrings and the exercise ids passed to register / register_answer."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in
                ("register", "register_answer") and node.args):
            skipped.add(id(node.args[0]))
    return skipped


def _numbers_in(text: str) -> set[float]:
    return {float(m) for m in _NUMBER.findall(text.replace(",", ""))}


def _visible(value, text: str, numbers: set[float]) -> bool:
    if isinstance(value, str):
        return re.search(r"(?<!\w)" + re.escape(value) + r"(?!\w)", text) is not None
    return float(value) in numbers


def _key(value):
    return ("n", float(value)) if isinstance(value, (int, float)) else ("s", value)


def find_answer_constants(public_source: str, hidden_source: str, references: list[str],
                          visible_text: str) -> list[str]:
    """Each place where the public module holds a secret atom or pair, as a readable line."""
    numbers = _numbers_in(visible_text)
    atoms, pairs = [], []
    for code in references:
        tree = ast.parse(code)
        names = _module_constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and _is_atom(node.value):
                atoms.append(node.value)
            if isinstance(node, ast.Dict):
                pairs += _atoms_and_pairs(node, names)[1]
    hidden = ast.parse(hidden_source)
    a, p = _compared(hidden, _module_constants(hidden))
    atoms += a
    pairs += p
    secret_atoms = {_key(v) for v in atoms if not _visible(v, visible_text, numbers)}
    secret_numbers = {k[1] for k in secret_atoms if k[0] == "n" and abs(k[1]) >= 10}
    secret_pairs = {(_key(k), _key(v)) for k, v in pairs if isinstance(k, str)}

    public = ast.parse(public_source)
    names, skipped = _module_constants(public), _skipped_nodes(public)
    found = []
    for node in ast.walk(public):
        if isinstance(node, ast.Constant) and _is_atom(node.value) and id(node) not in skipped:
            if _key(node.value) in secret_atoms:
                found.append(f"line {node.lineno}: the literal {node.value!r}")
            elif isinstance(node.value, str):
                for number in _numbers_in(node.value) & secret_numbers:
                    found.append(f"line {node.lineno}: the number {number:g} in {node.value!r}")
    dict_pairs = [(n.lineno, pair) for n in ast.walk(public) if isinstance(n, ast.Dict)
                  for pair in _atoms_and_pairs(n, names)[1]]
    compare_pairs = [(n.lineno, pair) for n in ast.walk(public) if isinstance(n, ast.Compare)
                     for pair in _compared(n, names)[1]]
    for lineno, (k, v) in dict_pairs + compare_pairs:
        if (_key(k), _key(v)) in secret_pairs:
            found.append(f"line {lineno}: the pair {k!r} -> {v!r}")
    return sorted(set(found))


def _solution_regions(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [solution_code(nb.cells[e.cell_index].source) for e in parse_exercises(nb, path.stem)]


def _topics() -> dict[str, str]:
    """Notebook number -> check module name, from the exercise ids each module registers."""
    found = {}
    for path in sorted(PUBLIC.glob("*.py")):
        ids = re.findall(r'register_answer\(\s*"(\d\d)\.\d+"', path.read_text(encoding="utf-8"))
        if ids:
            found[ids[0]] = path.stem
    return found


def notebook_inputs(number: str):
    """(public source, hidden source, reference regions, visible text) of one notebook."""
    topic = _topics()[number]
    (source,) = (ROOT / "notebooks").glob(f"{number}-*.ipynb")
    exercises = nbformat.read(ROOT / "exercises" / source.name, as_version=4)
    visible = "\n".join(cell.source for cell in exercises.cells)
    return ((PUBLIC / f"{topic}.py").read_text(encoding="utf-8"),
            (HIDDEN / f"{topic}.py").read_text(encoding="utf-8"), _solution_regions(source), visible)


@pytest.mark.parametrize("number", sorted(_topics()))
def test_public_checks_hold_no_answer_constant(number):
    """Does the public check module of this notebook hold none of its answers' secret constants?"""
    found = find_answer_constants(*notebook_inputs(number))
    assert not found, f"exercise_checks/{_topics()[number]}.py holds answer constants:\n" + "\n".join(found)


def test_a_planted_answer_constant_is_found():
    """Is a constant copied from a hidden check or a reference into a public module found, while
    a name the notebook shows (a provider, a task's key) is not?"""
    public, hidden, references, visible = notebook_inputs("02")
    assert find_answer_constants(public, hidden, references, visible) == []
    planted = public + '\n\nRIGHT = {"exported_method": "b"}\n'
    assert find_answer_constants(planted, hidden, references, visible) == [
        f"line {planted.count(chr(10)) - 0}: the pair 'exported_method' -> 'b'"]
    hidden_with_number = hidden + '\n\ndef _n(answer):\n    if answer["parameters"] != 9930:\n        pass\n'
    hint = public + '\n\ndef _hint(answer):\n    raise ValueError("expected 9930 weights")\n'
    assert any("9930" in line for line in find_answer_constants(hint, hidden_with_number, references, visible))
    compared = public + '\n\ndef _cmp(answer):\n    return answer["parameters"] == 9930\n'
    assert find_answer_constants(compared, hidden_with_number, references, visible)
    shown = public + '\n\nSHOWN = ("CPUExecutionProvider", "batch", "x")\n'
    assert find_answer_constants(shown, hidden, references, visible) == []
