"""The shape of the package, checked from its source: no import cycles, each layer imports
only the layers below it, the domain wings stay apart, no module grows past the size one
concept needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.architecture import Graph, cycles, import_graph, module_names, reaches

SOURCE = Path(__file__).resolve().parents[1] / "src" / "rnnlab"
WINGS = ("language", "forecasting", "speech")
ABOVE_THE_WINGS = ("cli", "analysis", "tuning", "api", "export", "serving")
MAX_LINES = 500  # "about 500": one concept; the C++ kernel (not Python) is exempt


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(SOURCE, "rnnlab")


def part(module: str) -> str:
    """The top-level part of rnnlab a module belongs to (``nn``, ``cli``, ``api``, ...)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "rnnlab"


def test_rnnlab_has_no_import_cycle(graph: Graph) -> None:
    found = [" -> ".join(cycle) for cycle in cycles(graph)]
    assert not found, "import cycles:\n" + "\n".join(found)


# Each part and the parts it may import (besides itself): the layers from the bottom up.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "io": {"errors"},
    "cache": {"errors", "io"},
    "registry": {"errors"},
    "nn": {"errors", "cache"},
    "config": {"errors", "io", "registry"},
    "data": {"errors", "io", "cache"},
    "models": {"errors", "config", "registry", "nn"},
    "tasks": {"errors", "io", "cache", "config", "registry", "nn", "data", "models"},
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_lower_layers_import_only_below_them(graph: Graph, name: str) -> None:
    allowed = ALLOWED[name] | {name}
    wrong = {
        module: sorted(t for t in targets if part(t) not in allowed)
        for module, targets in graph.items()
        if part(module) == name
    }
    wrong = {module: targets for module, targets in wrong.items() if targets}
    assert not wrong, f"{name} may import only {sorted(allowed)}; found {wrong}"


@pytest.mark.parametrize("wing", WINGS)
def test_a_domain_wing_does_not_import_another_or_the_layers_above(graph: Graph, wing: str) -> None:
    mine = [m for m in graph if part(m) == wing]
    assert mine, f"no rnnlab.{wing} package"
    for other in (*[w for w in WINGS if w != wing], *ABOVE_THE_WINGS):
        assert not reaches(graph, mine, f"rnnlab.{other}"), f"rnnlab.{wing} imports {other}"


def test_the_task_contract_and_training_know_no_domain(graph: Graph) -> None:
    below = [m for m in graph if part(m) in ("tasks", "training")]
    for other in (*WINGS, *ABOVE_THE_WINGS):
        assert not reaches(graph, below, f"rnnlab.{other}"), f"tasks/training import {other}"
    training = [m for m in graph if part(m) == "training"]
    used = set().union(*reaches(graph, training, "rnnlab.tasks").values())
    assert used <= {"rnnlab.tasks.base"}, f"training uses tasks beyond the contract: {used}"


def test_only_the_command_line_imports_the_command_line(graph: Graph) -> None:
    outside = [m for m in graph if part(m) not in ("cli", "__main__")]
    assert not reaches(graph, outside, "rnnlab.cli")


def test_no_python_module_is_longer_than_one_concept_needs() -> None:
    long = {
        str(path.relative_to(SOURCE)): lines
        for path in module_names(SOURCE, "rnnlab").values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"


# ------------------------------------------------------------ the checker itself, on a toy


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_cycles_count_function_level_type_only_and_relative_imports(tmp_path: Path) -> None:
    root = write(
        tmp_path / "toy",
        {
            "__init__.py": "",
            "a.py": "def f():\n    from toy import b\n",
            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub import c\n",
            "sub/__init__.py": "",
            "sub/c.py": "from ..a import f\n",
            "d.py": "import toy.a\n",
        },
    )
    graph = import_graph(root, "toy")
    assert graph["toy.a"] == {"toy.b"}
    assert graph["toy.b"] == {"toy.sub.c"}
    assert graph["toy.sub.c"] == {"toy.a"}
    assert cycles(graph) == [["toy.a", "toy.b", "toy.sub.c", "toy.a"]]


def test_a_name_from_a_package_is_an_import_of_its_init(tmp_path: Path) -> None:
    root = write(
        tmp_path / "toy",
        {
            "__init__.py": "from toy.low import helper\n",
            "low.py": "def helper():\n    pass\n",
            "high.py": "from toy import helper\n",
        },
    )
    graph = import_graph(root, "toy")
    assert graph["toy.high"] == {"toy"}
    assert graph["toy"] == {"toy.low"}
    assert cycles(graph) == []
