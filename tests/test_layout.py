"""Package layout: import cycles between piigan_tf's modules (read with ast, no imports run)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "piigan_tf"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str], top_level: bool = False) -> set[str]:
    """The piigan_tf modules a file imports: at module level, or at any depth
    (function-level imports too)."""
    found = set()
    tree = ast.parse(path.read_text())
    for node in (tree.body if top_level else ast.walk(tree)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found.update(n for n in names if n in modules)
    return found


def import_graph(top_level: bool = False) -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: imports(p, set(files), top_level) - {m} for m, p in files.items()}
    # A package's __init__ is imported with any of its modules: not an edge back.
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles = []

    def visit(m, stack):
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


def test_no_import_cycle_at_module_level():
    assert cycles_in(import_graph(top_level=True)) == []


def test_no_import_cycle_at_any_depth():
    """An import inside a function is a dependency all the same: none closes a cycle."""
    assert cycles_in(import_graph()) == []


def test_finding_and_loading_a_model_has_one_home():
    graph = import_graph()  # function-level imports included
    # Every reader of models goes to piigan_tf.loading, which needs no sampling or export.
    for user in ("piigan_tf.inference", "piigan_tf.export", "piigan_tf.pretrained",
                 "piigan_tf.run_state", "piigan_tf.demo"):
        assert "piigan_tf.loading" in graph[user], user
    assert not {"piigan_tf.inference", "piigan_tf.pretrained", "piigan_tf.export",
                "piigan_tf.serving"} & graph["piigan_tf.loading"]
    # Making a model folder is the one thing left to pretrained; sampling does not need it.
    assert "piigan_tf.pretrained" not in graph["piigan_tf.inference"]


def test_the_serving_graph_sits_below_the_sampling_api_and_the_export():
    graph = import_graph()  # function-level imports included
    # needs nothing of ours but the windows and the compositing rules, which
    # need nothing of ours but the config's list of those rules
    assert graph["piigan_tf.serving"] <= {"piigan_tf.windows", "piigan_tf.blending"}
    assert graph["piigan_tf.windows"] == set()
    assert graph["piigan_tf.blending"] <= {"piigan_tf.config"}
    assert "piigan_tf.serving" in graph["piigan_tf.inference"]
    assert "piigan_tf.export" not in graph["piigan_tf.inference"]
    assert {"piigan_tf.serving", "piigan_tf.loading"} <= graph["piigan_tf.export"]
    no_export = [c for c in cycles_in(graph) if {"piigan_tf.serving", "piigan_tf.export"} & set(c)]
    assert no_export == []
