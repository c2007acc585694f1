"""Similar submissions, for a person to look at: pairs of students whose exercise cells match.

Covers: :func:`find_similar`, which reads the submitted notebooks named in a grades
file, takes each exercise's cell (found by its ``# Exercise NN.M`` header, as the
grader does), keeps what the student wrote, normalises it and compares every pair
of students who handed in the same notebook. Nothing here changes a score.

Method (stated in the report too):

1. *What the student wrote*: the exercise cell without the lines the exercises
   notebook gave (header, ``check(...)`` call, imports around the region).
2. *Normalised*: Python's own tokenizer; comments, blank lines and layout are
   dropped, every name that is not a keyword, a builtin or an attribute becomes
   ``_1``, ``_2``... in order of first use (so renamed variables match), string
   literals are compared by value (``'a'`` equals ``"a"``).
3. *Not evidence*: an answer of fewer than :data:`MIN_TOKENS` tokens, an answer
   equal to the reference solution, and an answer shared by three or more
   students (or a fifth of those who answered): the obvious answer is no sign
   of copying.
4. *Score of a pair*: the similarity ratio of ``difflib.SequenceMatcher`` (2 x
   matching tokens / tokens of both) per exercise both answered, averaged over
   those exercises weighted by their length. A pair is flagged when the score
   is at least :data:`THRESHOLD` over at least :data:`MIN_EVIDENCE` tokens each.

A submission equal to the reference solutions (:func:`reference_copy_note`): the
grader notes it, the feedback page and the class report show the note, and the
score stays as it is. Its exercise cells, normalised as above, are compared with
the references: it is flagged when at least :data:`COPY_SHARE` of the exercises
the student attempted (and at least :data:`MIN_COPIED`) equal the reference, over
at least :data:`MIN_EVIDENCE` tokens. A copied ``solutions/`` notebook matches on
every exercise; an honest student matches the obvious one-line answers, seldom
two, never most of a notebook; the share (rather than "all") keeps one exercise
rewritten by hand from hiding a copy.

Each submission is read as untrusted: a regular file (no link), at most
:data:`MAX_SUBMISSION_BYTES`, parsed in a limited child process as the grader parses it
(``submissions.parse_notebook``); cells are cut at :data:`MAX_CELL_CHARS` before any
pattern or the tokenizer sees them. Does not cover: grading (``grader.py``) or showing the
pairs (``report.py``).
"""
from __future__ import annotations

import ast
import builtins
import difflib
import io
import keyword
import math
import os
import re
import stat
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from ..build import ROOT, exercise_in, make_exercise_notebook, parse_exercises, source_notebooks

__all__ = ["find_similar", "normalise_code", "reference_matches", "reference_copy_note", "SimilarPair",
           "Similarity", "THRESHOLD", "METHOD", "REFERENCE_COPY_NOTE", "COPY_SHARE", "MIN_COPIED"]

THRESHOLD = 0.9
MIN_TOKENS = 8
MIN_EVIDENCE = 30
MAX_SUBMISSION_BYTES = 20 * 2**20
MAX_CELL_CHARS = 50_000
MAX_TOKENS = 3000
#: Share of the attempted exercises that must equal the reference for the flag, and how many at least.
COPY_SHARE = 0.8
MIN_COPIED = 2
#: How the grader's note on such a submission starts (the report finds the flag by it).
REFERENCE_COPY_NOTE = "equal to the reference solutions"

METHOD = (f"Each exercise cell is reduced to what the student wrote (the lines the exercises notebook "
          f"gave are removed), then tokenized with Python's tokenizer: comments, blank lines and layout "
          f"are dropped, every variable, function and module name becomes _1, _2... in order of first use, "
          f"strings compare by value. Answers under {MIN_TOKENS} tokens, answers equal to the reference "
          f"solution and answers shared by 3 or more students are not counted. A pair's score is "
          f"difflib's similarity ratio per exercise, averaged over the exercises both answered, weighted "
          f"by length; pairs scoring at least {THRESHOLD:.2f} over at least {MIN_EVIDENCE} tokens each are "
          f"listed. A listed pair is for a person to look at; it never changes a score.")

_KEEP = set(keyword.kwlist) | set(dir(builtins))


@dataclass
class SimilarPair:
    """Two students whose cells in one notebook are alike."""

    notebook: str
    students: tuple[str, str]
    score: float
    exercises: list[str]          # compared
    identical: list[str]          # identical after normalisation
    tokens: int                   # tokens compared (the smaller of the two)


@dataclass
class Similarity:
    """What :func:`find_similar` found: the flagged pairs and the submissions it could not read."""

    pairs: list[SimilarPair] = field(default_factory=list)
    compared: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (student, notebook, why)
    threshold: float = THRESHOLD


def _read_untrusted(path: Path) -> list[str]:
    """The code cells of a submitted notebook, read as untrusted data (no link, size-capped) and
    parsed in a limited child process, as the grader parses it (a notebook built to bloat when
    parsed costs that child, not the process writing the report)."""
    from .submissions import parse_notebook

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_SUBMISSION_BYTES:
            raise ValueError(f"larger than {MAX_SUBMISSION_BYTES // 2**20} MiB")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_SUBMISSION_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SUBMISSION_BYTES:
        raise ValueError(f"larger than {MAX_SUBMISSION_BYTES // 2**20} MiB")
    return parse_notebook(data)[1]


def _cells(code_cells) -> dict[str, str]:
    found = {}
    for source in code_cells:
        if isinstance(source, str):
            exercise = exercise_in(source[:MAX_CELL_CHARS])
            if exercise:
                found[exercise] = source[:MAX_CELL_CHARS]  # the last one counts, as in grading
    return found


def _literal(text: str) -> str:
    try:
        return repr(ast.literal_eval(text))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def normalise_code(source: str, given: frozenset = frozenset()) -> list[str]:
    """The tokens that stand for what a student wrote (see the module docstring).

    Args:
        source: an exercise cell's source.
        given: stripped lines the exercises notebook gave; they are left out.

    Example:
        >>> normalise_code("total = a + 1  # sum") == normalise_code("s=b+1")
        True
    """
    kept = "\n".join(line for line in source.splitlines() if line.strip() and line.strip() not in given)
    names: dict[str, str] = {}
    tokens: list[str] = []
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(kept + "\n").readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER):
                continue
            if tok.type == tokenize.NAME and tok.string not in _KEEP and previous != ".":
                text = names.setdefault(tok.string, f"_{len(names) + 1}")
            elif tok.type == tokenize.STRING:
                text = _literal(tok.string)
            elif tok.type == tokenize.NEWLINE:
                text = ";"
            elif tok.type == tokenize.INDENT:
                text = "{"
            elif tok.type == tokenize.DEDENT:
                text = "}"
            else:
                text = tok.string
            tokens.append(text)
            previous = tok.string
            if len(tokens) >= MAX_TOKENS:
                break
    except (tokenize.TokenError, IndentationError, SyntaxError):
        # Not valid Python (or removed lines broke the layout): words and marks, comments dropped.
        words = re.findall(r"[A-Za-z_]\w*|\d[\w.]*|\S", re.sub(r"#[^\n]*", "", kept))
        tokens = [names.setdefault(w, f"_{len(names) + 1}") if (w[0].isalpha() or w[0] == "_")
                  and w not in _KEEP else w for w in words][:MAX_TOKENS]
    return tokens


def _notebook_material(source, name: str) -> dict[str, tuple]:
    """Per exercise of one source notebook: the lines its exercises build gives, the reference's tokens."""
    shipped = _cells(c.source for c in make_exercise_notebook(source, name).cells
                     if c.cell_type == "code")
    given = {e: frozenset(line.strip() for line in text.splitlines() if line.strip())
             for e, text in shipped.items()}
    material = {}
    for exercise in parse_exercises(source, name):
        lines = given.get(exercise.id, frozenset())
        material[exercise.id] = (lines, normalise_code(exercise.solution, lines))
    return material


def _course_material(root: Path):
    """Per notebook: per exercise, the given lines and the reference's tokens."""
    import nbformat

    return {path.stem: _notebook_material(nbformat.read(path, as_version=4), path.stem)
            for path in source_notebooks(root)}


def reference_matches(code_cells: list[str], source, name: str) -> tuple[list[str], list[str], int]:
    """Which attempted exercises of a submission equal the reference solution after normalising.

    Args:
        code_cells: the submission's code cells' sources; an exercise's cell is the
            first that carries its header, as in grading.
        source: the course's source notebook (``notebooks/``), already read.
        name: its name (``02-export-and-verify``).

    Returns:
        ``(matched, attempted, tokens)``: the exercises equal to the reference, those
        where the student wrote anything, and the reference tokens the matches hold.
    """
    material = _notebook_material(source, name)
    answers: dict[str, list[str]] = {}
    for cell in code_cells:
        text = cell[:MAX_CELL_CHARS] if isinstance(cell, str) else ""
        exercise = exercise_in(text)
        if exercise in material and exercise not in answers:
            answers[exercise] = normalise_code(text, material[exercise][0])
    attempted = [e for e in material if answers.get(e)]
    matched = [e for e in attempted if answers[e] == material[e][1]]
    return matched, attempted, sum(len(material[e][1]) for e in matched)


def reference_copy_note(code_cells: list[str], source, name: str) -> str | None:
    """The grader's note for a submission equal to the reference solutions, or None (see the module).

    Example:
        >>> reference_copy_note(solution_cells, source_nb, "01-execution-providers")  # doctest: +SKIP
        'equal to the reference solutions in 4 of 4 attempted exercises (01.1, ...'
    """
    matched, attempted, tokens = reference_matches(code_cells, source, name)
    if len(matched) < max(MIN_COPIED, COPY_SHARE * len(attempted)) or tokens < MIN_EVIDENCE:
        return None
    return (f"{REFERENCE_COPY_NOTE} in {len(matched)} of {len(attempted)} attempted exercises "
            f"({', '.join(matched)}), names and layout aside: a copy of the solutions notebook? The score "
            "is unchanged; for a person to look at")


def find_similar(rows: list[dict], *, root: Path = ROOT, base: Path | None = None,
                 threshold: float = THRESHOLD) -> Similarity:
    """Flag pairs of students whose answers in one notebook are alike (scores never change).

    Args:
        rows: the rows of a grades file; each row's ``path`` names the submission.
        root: the course folder whose ``notebooks/`` gives the exercises and references.
        base: the folder relative paths in ``rows`` start from (default: the current one).
        threshold: the score from which a pair is listed (0 to 1).

    Returns:
        A :class:`Similarity` with the pairs, highest score first.

    Example:
        >>> found = find_similar(read_grades("grades.json"))  # doctest: +SKIP
        >>> [(p.students, round(p.score, 2)) for p in found.pairs]  # doctest: +SKIP
    """
    material = _course_material(root)
    result = Similarity(threshold=threshold)
    answers: dict[str, dict[str, dict[str, list[str]]]] = {}  # notebook -> student -> exercise -> tokens
    for row in rows:
        notebook, student = row.get("notebook"), str(row.get("student"))
        if notebook not in material:
            continue
        path = Path(str(row.get("path", "")))
        path = path if path.is_absolute() or base is None else Path(base) / path
        try:
            cells = _cells(_read_untrusted(path))
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            result.skipped.append((student, notebook, f"{path.name}: {reason}"))
            continue
        answers.setdefault(notebook, {})[student] = {e: normalise_code(text, material[notebook][e][0])
                                                     for e, text in cells.items() if e in material[notebook]}
    for notebook, by_student in answers.items():
        counted = _counted(by_student, material[notebook])
        students = sorted(counted)
        result.compared += len(by_student)
        for i, a in enumerate(students):
            for b in students[i + 1:]:
                pair = _compare(notebook, a, b, counted[a], counted[b], threshold)
                if pair:
                    result.pairs.append(pair)
    result.pairs.sort(key=lambda p: (-p.score, p.notebook, p.students))
    return result


def _counted(by_student, material) -> dict[str, dict[str, tuple]]:
    """Per student, the answers that count as evidence (see step 3 of the method)."""
    counted: dict[str, dict[str, tuple]] = {s: {} for s in by_student}
    for exercise, (_, reference) in material.items():
        given = {s: tuple(a[exercise]) for s, a in by_student.items()
                 if len(a.get(exercise, ())) >= MIN_TOKENS}
        shares: dict[tuple, int] = {}
        for tokens in given.values():
            shares[tokens] = shares.get(tokens, 0) + 1
        common = max(3, math.ceil(len(given) / 5))
        for student, tokens in given.items():
            if tokens != tuple(reference) and shares[tokens] < common:
                counted[student][exercise] = tokens
    return counted


def _compare(notebook, a, b, answers_a, answers_b, threshold) -> SimilarPair | None:
    both = sorted(set(answers_a) & set(answers_b))
    evidence = min(sum(len(answers_a[e]) for e in both), sum(len(answers_b[e]) for e in both))
    if not both or evidence < MIN_EVIDENCE:
        return None
    weights = [len(answers_a[e]) + len(answers_b[e]) for e in both]
    matchers = [difflib.SequenceMatcher(None, answers_a[e], answers_b[e], autojunk=False) for e in both]
    if sum(m.quick_ratio() * w for m, w in zip(matchers, weights)) / sum(weights) < threshold:
        return None  # an upper bound of the score is already below the threshold
    score = sum(m.ratio() * w for m, w in zip(matchers, weights)) / sum(weights)
    if score < threshold:
        return None
    return SimilarPair(notebook, (a, b), score, both, [e for e in both if answers_a[e] == answers_b[e]],
                       evidence)
