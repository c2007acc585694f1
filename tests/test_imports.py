"""Tests for the layout of course_utils/: do its modules import one another one way only?"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "course_utils"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, modules: set) -> set:
    """Every course_utils module ``path`` imports, at module level or inside a function."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c in modules and c != name}
    return found


def _graph() -> dict:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imported_modules(p, modules) for p in paths}


def _cycle(graph: dict):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target.endswith(".__init__") or target in ("course_utils",):
                continue  # the package itself only re-exports lazily
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_module_imports_form_no_cycle():
    """Do course_utils's modules import one another one way only (a DAG), lazy imports included?"""
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_check_finds_a_cycle():
    """Would the check above notice a cycle (so that its passing means something)?"""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_function_level_imports():
    """Are imports inside functions part of the graph (they close cycles too)?"""
    graph = _graph()
    assert "course_utils.timing" in graph["course_utils.benchmark"]
    assert "course_utils.export" in graph["course_utils.verify"]  # imported inside verify_model


# Private names read across modules (none left; keep it that way).
_KNOWN_PRIVATE_IMPORTS: set[str] = set()


def test_no_private_name_is_imported_from_another_module():
    """Does every module import only public names of the others (no ``from .x import _y``)?"""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                    "course_utils")):
                module = (node.module or "").rpartition(".")[2] or "course_utils"
                offenders += [f"{path.relative_to(PACKAGE)}: {module}.{alias.name}"
                              for alias in node.names if alias.name.startswith("_")]
    assert set(offenders) <= _KNOWN_PRIVATE_IMPORTS, sorted(set(offenders) - _KNOWN_PRIVATE_IMPORTS)


def test_nothing_outside_the_grader_imports_from_it():
    """Does every module outside course_utils/grading/ stay clear of it (the release leaves it out)?"""
    graph = _graph()
    offenders = sorted(f"{module} -> {target}" for module, targets in graph.items()
                       if not module.startswith("course_utils.grading") and module != "course_utils"
                       for target in targets if target.startswith("course_utils.grading"))
    assert not offenders, offenders
    assert "course_utils.grading.hidden_checks" in graph, "the grader lives in course_utils/grading/"


def test_the_package_reexports_the_grader_only_lazily():
    """Does course_utils/__init__.py name the grader only as a string (imported on first use)?"""
    source = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    assert "import grading" not in source and "from .grading" not in source
