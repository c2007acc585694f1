"""A solutions notebook run again in a changed kernel, its outputs set against the stored ones.

For the tests that ask whether a notebook holds on another kind of machine (no NCHWc layout,
no plugin provider): :func:`rerun` executes a copy with one cell of set-up first and one proof
cell last, and :func:`changed_outputs` names every cell whose output nbval compares and that
printed something else.
"""
import configparser
import re
import shutil

import nbformat
from nbclient import NotebookClient

from conftest import ROOT

SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


def _sanitizers():
    parser = configparser.ConfigParser()
    parser.read(SANITIZE)
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def compared_text(cell, sanitizers=()) -> str:
    """The outputs nbval compares for one cell (streams and plain text), sanitised."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output and "text/plain" in output.data:
            parts.append(output.data["text/plain"])
    text = "".join(parts)
    for pattern, replacement in sanitizers:
        text = pattern.sub(replacement, text)
    return text


def rerun(notebook, tmp_path, first: str, last: str):
    """(stored, run): the notebook as stored, and a copy executed in ``tmp_path`` with ``first``
    run before its cells and ``last`` after them (an error in any cell raises)."""
    stored = nbformat.read(notebook, as_version=4)
    shutil.copy(notebook, tmp_path / notebook.name)
    run = nbformat.read(tmp_path / notebook.name, as_version=4)
    run.cells.insert(0, nbformat.v4.new_code_cell(first))
    run.cells.append(nbformat.v4.new_code_cell(last))
    NotebookClient(run, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return stored, run


def changed_outputs(stored, run) -> tuple[list, int]:
    """(changed, compared): the stored code cells nbval compares whose rerun printed something
    else (index and source), and how many were compared."""
    sanitizers = _sanitizers()
    changed, compared = [], 0
    for index, (before, after) in enumerate(zip(stored.cells, run.cells[1:-1])):
        if before.cell_type != "code" or "NBVAL_IGNORE_OUTPUT" in before.source:
            continue
        if compared_text(after, sanitizers) != compared_text(before, sanitizers):
            changed.append((index, before.source))
        compared += 1
    return changed, compared
