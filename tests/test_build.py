"""Tests for course_utils/build.py: markers, the two builds, the run record, modes, and --check."""
import os
import shutil
import stat
from pathlib import Path

import nbformat
import pytest

from course_utils.build import (RUN_ALL_NOTE, MarkerError, build_machines, build_notebooks,
                                make_exercise_notebook, make_solution_notebook, new_file_modes,
                                parse_exercises, recorded_run, solution_code)
from course_utils.hardware import machine_record


def _read(root, name):
    return nbformat.read(root / "tests" / "files" / name, as_version=4)


def test_exercises_are_parsed_with_points(root):
    """Are ids, points and tasks read from the exercise headers?"""
    exercises = parse_exercises(_read(root, "two-exercises.ipynb"), "99-demo")
    assert [(e.id, e.points) for e in exercises] == [("99.1", 2), ("99.2", 3)]
    assert exercises[1].task == 'say "hi" in `greeting`'
    assert "### BEGIN" not in exercises[0].solution and "values.append(1)" in exercises[0].solution


def test_wrapped_header_is_read_as_one_task():
    """Is a task wrapped onto indented comment lines read whole, and the code after it left out?"""
    cell = nbformat.v4.new_code_cell(
        "# Exercise 99.1 (2 points): export `model` to artifacts/m.onnx\n"
        "#   with a dynamic batch; store the path in `path`\n"
        "# a plain comment, not part of the task\n"
        "### BEGIN SOLUTION\npath = 'artifacts/m.onnx'\n### END SOLUTION\n")
    nb = nbformat.v4.new_notebook(cells=[cell])
    [exercise] = parse_exercises(nb, "99-demo")
    assert exercise.task == "export `model` to artifacts/m.onnx with a dynamic batch; store the path in `path`"
    student = next(c.source for c in make_exercise_notebook(nb, "99-demo").cells
                   if "Exercise 99.1" in c.source and c.cell_type == "code")
    assert f'raise NotImplementedError("Exercise 99.1: {exercise.task}")' in student


@pytest.mark.parametrize("name, words", [
    ("unclosed-solution.ipynb", "never closed"),
    ("nested-solution.ipynb", "nested"),
    ("solution-without-header.ipynb", "header"),
    ("end-without-begin.ipynb", "without a '### BEGIN SOLUTION'"),
])
def test_bad_markers_are_refused_with_the_cell_named(root, name, words):
    """Is a broken solution region refused with the notebook and cell named?"""
    with pytest.raises(MarkerError) as error:
        parse_exercises(_read(root, name), name)
    assert name in str(error.value) and "cell" in str(error.value) and words in str(error.value)


def test_exercise_build_replaces_regions_and_clears_outputs(root):
    """Does the student build keep indentation, raise NotImplementedError and clear outputs?"""
    source = _read(root, "two-exercises.ipynb")
    source.cells[1].outputs = [nbformat.v4.new_output("stream", text="old")]
    nb = make_exercise_notebook(source, "99-demo")
    assert nb.cells[0].source == RUN_ALL_NOTE  # the first cell is an exercise: the note comes first
    assert nb.cells[1].source.endswith("YOUR ANSWER HERE")
    assert '    raise NotImplementedError("Exercise 99.1: append 1 to `values`")' in nb.cells[3].source
    assert 'raise NotImplementedError("Exercise 99.2: say \\"hi\\" in `greeting`")' in nb.cells[4].source
    assert "values.append" not in nb.cells[3].source and nb.cells[2].outputs == []
    assert nb.cells[4].metadata["course_utils"] == {"exercise": "99.2", "points": 3}
    compile(nb.cells[4].source, "cell", "exec")  # the escaped message is valid Python


def test_every_exercises_notebook_says_how_to_go_on_after_an_exercise(root):
    """Does the first cell of each student notebook say how to go on where Run All stopped?"""
    for path in sorted((root / "exercises").glob("[0-9][0-9]-*.ipynb")):
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.cell_type == "markdown" and first.source.startswith("# ")
        assert first.source.endswith(RUN_ALL_NOTE), path.name


def test_solution_build_only_drops_markers(root):
    """Does the instructor build keep the solution and drop only the marker lines?"""
    nb = make_solution_notebook(_read(root, "two-exercises.ipynb"), "99-demo")
    text = "\n".join(c.source for c in nb.cells)
    assert "SOLUTION" not in text and "values.append(1)" in text and "An open format." in text


@pytest.fixture
def course(tmp_path, root):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(root / "tests/files/two-exercises.ipynb", tmp_path / "notebooks/99-demo.ipynb")
    return tmp_path


def test_check_names_stale_builds(course):
    """Does --check pass right after a build and name the files once the source changes (the
    source itself when its time line is missing or stale)?"""
    assert build_notebooks(course, check=True) == [
        "notebooks/99-demo.ipynb", "exercises/99-demo.ipynb", "solutions/99-demo.ipynb"]
    build_notebooks(course)
    assert build_notebooks(course, check=True) == []
    nb = nbformat.read(course / "notebooks/99-demo.ipynb", as_version=4)
    nb.cells[1].source = "values = [0]"
    nbformat.write(nb, course / "notebooks/99-demo.ipynb")
    assert build_notebooks(course, check=True) == ["exercises/99-demo.ipynb", "solutions/99-demo.ipynb"]


def test_solutions_are_stored_executed_with_their_run(course):
    """Are solutions executed, with outputs, and each cell's seconds and the machine recorded in
    the notebook's metadata (which --check leaves out of the comparison)?"""
    build_notebooks(course)
    nb = nbformat.read(course / "solutions/99-demo.ipynb", as_version=4)
    assert nb.cells[3].outputs[0]["text"] == "hi\n"
    run = recorded_run(nb)
    assert run["machine"] == machine_record()
    assert len(run["cell_seconds"]) == len(nb.cells)
    assert all((s is None) == (c.cell_type == "markdown") for s, c in zip(run["cell_seconds"], nb.cells))
    assert all(s >= 0 for s in run["cell_seconds"] if s is not None)
    nb.metadata["course_utils"]["run"]["cell_seconds"][1] += 1.0  # another run's timing is no change
    nbformat.write(nb, course / "solutions/99-demo.ipynb")
    assert "solutions/99-demo.ipynb" not in build_notebooks(course, check=True)


def _with_umask(mask, fn):
    old = os.umask(mask)
    try:
        return fn()
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_built_files_get_the_umasks_modes(course, mask):
    """Are rebuilt notebooks 0666 and new folders 0777 less the umask (not mkstemp's 0600), and a
    source whose time line is rewritten left with the mode it had?"""
    (course / "notebooks/99-demo.ipynb").chmod(0o664)
    _with_umask(mask, lambda: build_notebooks(course, execute=False))
    for folder in ("exercises", "solutions"):
        assert stat.S_IMODE((course / folder).stat().st_mode) == 0o777 & ~mask, folder
        assert stat.S_IMODE((course / folder / "99-demo.ipynb").stat().st_mode) == 0o666 & ~mask, folder
    assert stat.S_IMODE((course / "notebooks/99-demo.ipynb").stat().st_mode) == 0o664
    assert _with_umask(0o027, new_file_modes) == (0o640, 0o750)


def test_solutions_were_built_on_one_machine(root):
    """Were all notebooks in solutions/ executed on one machine, in one build (so "this CPU" is
    the same CPU in every stored output)?"""
    machines = build_machines(root)
    assert len(machines) == 1 and "no recorded run" not in machines, (
        "solutions/ was executed on several machines or without a recorded run: "
        + "; ".join(f"{', '.join(names)}: {key}" for key, names in machines.items())
        + ". Rebuild all of them in one run on one machine: python -m course_utils build")


def test_notebooks_from_two_machines_are_told_apart(tmp_path):
    """Does build_machines list each machine with its notebooks, and a notebook without a record?"""
    (tmp_path / "solutions").mkdir()
    for name, cpu in [("00-a", "CPU A"), ("01-b", "CPU B"), ("02-c", "CPU A"), ("03-d", None)]:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
        if cpu:
            nb.metadata["course_utils"] = {"run": {"machine": {**machine_record(), "cpu": cpu},
                                                   "cell_seconds": [0.1]}}
        nbformat.write(nb, tmp_path / "solutions" / f"{name}.ipynb")
    machines = build_machines(tmp_path)
    assert sorted(machines.values()) == [["00-a", "02-c"], ["01-b"], ["03-d"]]
    assert "no recorded run" in machines and any(key.startswith("CPU: CPU B") for key in machines)


def test_each_solutions_notebook_prints_its_machine_first(root):
    """Does the first code cell of every solutions notebook print the machine it ran on (CPU,
    instruction sets, cores), its output left out of nbval's comparison?"""
    for path in sorted((root / "solutions").glob("[0-9][0-9]-*.ipynb")):
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert first.source.startswith("# NBVAL_IGNORE_OUTPUT") and "print_machine()" in first.source
        text = "".join(o.get("text", "") for o in first.outputs)
        assert text.startswith("CPU: ") and "instruction sets: " in text, path.name


def test_a_bad_source_writes_nothing(course, root):
    """Is nothing written when one source notebook has a broken marker?"""
    shutil.copy(root / "tests/files/unclosed-solution.ipynb", course / "notebooks/98-bad.ipynb")
    with pytest.raises(MarkerError, match="98-bad"):
        build_notebooks(course, execute=False)
    assert not (course / "exercises").exists() and not (course / "solutions").exists()


def test_committed_builds_are_up_to_date(root):
    """Are exercises/ and solutions/ what notebooks/ gives today (python -m course_utils build --check)?"""
    assert build_notebooks(root, check=True) == []


def test_nbval_markers_are_for_the_solutions_only():
    """Is `# NBVAL_IGNORE_OUTPUT` dropped from the student's cell and kept for nbval in solutions?"""
    cell = nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nprint(time.time())  # NBVAL_X stays")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), cell])
    student = make_exercise_notebook(nb, "99-demo").cells[1].source
    assert student == "print(time.time())  # NBVAL_X stays"
    assert make_solution_notebook(nb, "99-demo").cells[1].source.startswith("# NBVAL_IGNORE_OUTPUT\n")


def test_committed_exercises_show_no_nbval_markers(root):
    """Does no student notebook in exercises/ carry an nbval marker line?"""
    for path in sorted((root / "exercises").glob("[0-9][0-9]-*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert "NBVAL_" not in cell.source, path.name


def test_a_missing_kernel_is_one_clear_error(monkeypatch):
    """Without a python3 kernel, does executing a notebook say which one to install?"""
    import nbclient
    from jupyter_client.kernelspec import NoSuchKernel

    from course_utils.build import NotebookExecutionError, execute_notebook

    def no_kernel(self, *args, **kwargs):
        raise NoSuchKernel("python3")

    monkeypatch.setattr(nbclient.NotebookClient, "execute", no_kernel)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    with pytest.raises(NotebookExecutionError, match="99-demo: no 'python3' Jupyter kernel.*ipykernel"):
        execute_notebook(nb, Path("."), name="99-demo")


def test_stored_outputs_hold_no_path_of_this_machine(root):
    """Do the executed solutions hold no absolute path of the machine that built them
    (the checkout, a temporary folder, a kernel's cell file), which would differ on every other?"""
    import re

    machine_path = re.compile(r"/tmp/|/var/folders/|" + re.escape(str(root.resolve())))
    for path in sorted((root / "solutions").glob("[0-9][0-9]-*.ipynb")):
        for number, cell in enumerate(nbformat.read(path, as_version=4).cells, start=1):
            for output in cell.get("outputs", []):
                text = str(output.get("text", "")) + str(output.get("data", "")) + str(output.get("traceback", ""))
                assert not machine_path.search(text), f"{path.name}, cell {number}: {text[:200]}"


def test_solution_code_is_what_lies_between_the_markers():
    """Is a cell's reference answer the lines between its markers only, over every region?"""
    source = "a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\nc = 3\n### BEGIN SOLUTION\nd = 4\n### END SOLUTION"
    assert solution_code(source) == "b = 2\nd = 4"
    with pytest.raises(MarkerError, match="never closed"):
        solution_code("### BEGIN SOLUTION\nb = 2")
