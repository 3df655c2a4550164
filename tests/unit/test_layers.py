"""Dependencies point one way (docs/architecture.md). Each rule names the edges it forbids;
a failure names the importing file, its line and the imported module.

    orchestrator.specs   <- orchestrator (control plane) <- jobs (workloads) <- bench
    (pydantic + stdlib:     no torch, no transformers;      reach the registry only through
     the contract)          Ray only in ray_client/         jobs.runtime.context / .driver

Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "ray")
# The driver's side of jobs that may use the control plane beyond its specs: the job context
# (the one door job kinds use to the registry) and the driver entry point.
REGISTRY_DOORS = ("jobs.runtime.context", "jobs.runtime.driver")


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[Edge]:
    """Every module ``path`` imports, at any depth; ``from pkg import sub`` names pkg.sub
    when sub is a module of this project."""
    source = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    edges = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            edges += [Edge(source, alias.name, where) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                target = sub if is_project_module(sub) else node.module
                edges.append(Edge(source, target, where))
    return edges


def is_project_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def edges_under(package: str) -> list[Edge]:
    files = sorted(ROOT.joinpath(*package.split(".")).rglob("*.py"))
    return [edge for f in files if "migrations" not in f.parts for edge in imports_of(f)]


def within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def forbidden(edges: list[Edge], *targets: str, unless_from: tuple[str, ...] = ()) -> list[str]:
    return [
        str(e)
        for e in edges
        if within(e.target, *targets) and not (unless_from and within(e.source, *unless_from))
    ]


# --- the rules ------------------------------------------------------------------------------


def test_specs_import_nothing_else_of_ours_and_no_heavy_library() -> None:
    edges = edges_under("orchestrator.specs")
    bad = forbidden(edges, "jobs", "bench", "tests", "sqlalchemy", *HEAVY)
    bad += [
        str(e)
        for e in edges
        if within(e.target, "orchestrator") and not within(e.target, "orchestrator.specs")
    ]
    assert not bad, "orchestrator.specs must stay pydantic + stdlib:\n" + "\n".join(bad)


def test_the_control_plane_imports_no_workloads_and_no_benchmarks() -> None:
    bad = forbidden(edges_under("orchestrator"), "jobs", "bench", "tests")
    assert not bad, "orchestrator <- jobs <- bench: nothing points back up:\n" + "\n".join(bad)


def test_workloads_import_no_benchmarks() -> None:
    bad = forbidden(edges_under("jobs"), "bench", "tests")
    assert not bad, "jobs <- bench: jobs imports no benchmark:\n" + "\n".join(bad)


def test_registry_imports_no_heavy_libraries() -> None:
    bad = forbidden(edges_under("orchestrator.registry"), *HEAVY)
    assert not bad, "the registry is plain SQLAlchemy:\n" + "\n".join(bad)


def test_control_plane_imports_no_torch_no_transformers() -> None:
    bad = forbidden(edges_under("orchestrator"), "torch", "transformers")
    assert not bad, "orchestrator must import neither torch nor transformers:\n" + "\n".join(bad)


def test_only_the_ray_client_package_imports_ray() -> None:
    bad = forbidden(edges_under("orchestrator"), "ray", unless_from=("orchestrator.ray_client",))
    assert not bad, "within orchestrator only orchestrator.ray_client imports Ray:\n" + "\n".join(
        bad
    )


def test_job_kinds_and_workers_reach_the_registry_only_through_the_job_context() -> None:
    edges = [e for e in edges_under("jobs") if not within(e.target, "orchestrator.specs")]
    bad = forbidden(edges, "orchestrator", "sqlalchemy", unless_from=REGISTRY_DOORS)
    assert not bad, (
        "job kinds, Ray Train workers and serving use of the control plane only its specs "
        "(the registry through JobContext; workers report to the driver):\n" + "\n".join(bad)
    )


def test_the_training_engine_has_no_import_cycle() -> None:
    """jobs.train: the plan is read by both sides and imports neither (a lazy import counts)."""
    edges = {(e.source, e.target) for e in edges_under("jobs.train") if e.source != e.target}
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        if within(target, "jobs.train"):
            graph.setdefault(source, set()).add(target)
    assert not find_cycle(graph), f"import cycle in jobs.train: {find_cycle(graph)}"


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a path of its nodes, or []."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":  # open nodes are exactly the path
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = "done"
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return []


# Commands that run on the head itself and start the server side: `orch cluster up|down`
# (they create and migrate the registry, and start the API server) and `orch server`.
LOCAL_BOOTSTRAP = ("orchestrator.cli.cluster", "orchestrator.cli.admin")
# The clients of the API: the CLI, its HTTP client, and the demo's closing summary.
CLIENTS = ("orchestrator.cli", "orchestrator.client", "orchestrator.demo")
SERVER_SIDE = (
    "orchestrator.registry",
    "orchestrator.submission",
    "orchestrator.endpoints",
    "orchestrator.model_import",
    "orchestrator.scheduler",
    "orchestrator.ray_client",
    "sqlalchemy",
)


def test_clients_reach_the_registry_and_the_cluster_only_through_the_api() -> None:
    edges = [e for e in edges_under("orchestrator") if within(e.source, *CLIENTS)]
    bad = forbidden([e for e in edges if not within(e.source, *LOCAL_BOOTSTRAP)], *SERVER_SIDE)
    assert not bad, (
        "the CLI speaks the API: it opens no database and no Ray connection:\n" + "\n".join(bad)
    )


def test_the_api_does_not_import_its_clients() -> None:
    bad = forbidden(edges_under("orchestrator.api"), *CLIENTS)
    assert not bad, "the API server imports no client code:\n" + "\n".join(bad)


def test_orch_help_imports_no_heavy_library() -> None:
    probe = (
        "import sys\n"
        "from orchestrator.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {(*HEAVY, 'sqlalchemy', 'jobs')!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout


# --- the checker itself ---------------------------------------------------------------------


def test_the_checker_names_a_forbidden_edge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forbidden import added anywhere (even inside a function) is caught and named."""
    fake = tmp_path / "orchestrator" / "cli"
    fake.mkdir(parents=True)
    (tmp_path / "orchestrator" / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "bad.py").write_text("def f():\n    import torch\n    from ray import serve\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    edges = edges_under("orchestrator")
    assert forbidden(edges, "torch") == [
        "orchestrator/cli/bad.py:2: orchestrator.cli.bad imports torch"
    ]
    assert forbidden(edges, "ray", unless_from=("orchestrator.ray_client",)) == [
        "orchestrator/cli/bad.py:3: orchestrator.cli.bad imports ray"
    ]


def test_the_cycle_finder_names_a_circle() -> None:
    """The circle that the plan module ended: fit -> worker -> callbacks -> fit."""
    graph = {"fit": {"worker"}, "worker": {"callbacks", "plan"}, "callbacks": {"fit"}}
    assert find_cycle(graph) == ["callbacks", "fit", "worker", "callbacks"]
    assert find_cycle({"fit": {"plan"}, "worker": {"plan"}, "callbacks": {"plan"}}) == []
