"""Dependencies point one way (README, *Architecture*). Each rule names the edges it forbids;
a failure names the importing file, its line and the imported module.

    jobs.specs    <- orchestrator (control plane)   <- jobs.context / jobs.driver (the door)
    (pydantic)       (no torch, no transformers;        job kinds, workers, serving: no
                      Ray only in orchestrator.ray_client)   orchestrator, no registry

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
# The driver's side of jobs that may use the registry: the job context (the one door job
# kinds use), the driver entry point, and the demo's closing summary (an API client).
REGISTRY_DOORS = ("jobs.context", "jobs.driver", "jobs.demo")


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


def test_specs_import_no_control_plane_no_workloads_no_heavy_libraries() -> None:
    edges = edges_under("jobs.specs")
    bad = forbidden(edges, "orchestrator", *HEAVY)
    bad += [
        str(e) for e in edges if within(e.target, "jobs") and not within(e.target, "jobs.specs")
    ]
    assert not bad, "jobs.specs must stay pydantic + stdlib:\n" + "\n".join(bad)


def test_registry_imports_no_heavy_libraries_and_no_workloads() -> None:
    bad = forbidden(edges_under("orchestrator.registry"), *HEAVY, "jobs")
    assert not bad, "the registry is plain SQLAlchemy:\n" + "\n".join(bad)


def test_control_plane_imports_no_torch_no_transformers() -> None:
    bad = forbidden(edges_under("orchestrator"), "torch", "transformers")
    assert not bad, "orchestrator must import neither torch nor transformers:\n" + "\n".join(bad)


def test_control_plane_imports_workloads_only_through_specs() -> None:
    edges = edges_under("orchestrator")
    bad = [str(e) for e in edges if within(e.target, "jobs") and not within(e.target, "jobs.specs")]
    assert not bad, "orchestrator may import jobs.specs only:\n" + "\n".join(bad)


def test_only_the_ray_client_package_imports_ray() -> None:
    bad = forbidden(edges_under("orchestrator"), "ray", unless_from=("orchestrator.ray_client",))
    assert not bad, "within orchestrator only orchestrator.ray_client imports Ray:\n" + "\n".join(
        bad
    )


def test_job_kinds_and_workers_reach_the_registry_only_through_the_job_context() -> None:
    bad = forbidden(edges_under("jobs"), "orchestrator", "sqlalchemy", unless_from=REGISTRY_DOORS)
    assert not bad, (
        "job kinds, Ray Train workers and serving must not touch the registry or the control "
        "plane (use JobContext; workers report to the driver):\n" + "\n".join(bad)
    )


# Commands that run on the head itself and start the server side: `orch cluster up|down`
# (they create and migrate the registry, and start the API server) and `orch server`.
LOCAL_BOOTSTRAP = ("orchestrator.cli.cluster", "orchestrator.cli.admin")
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
    edges = edges_under("orchestrator.cli") + imports_of(ROOT / "orchestrator" / "client.py")
    bad = forbidden([e for e in edges if not within(e.source, *LOCAL_BOOTSTRAP)], *SERVER_SIDE)
    assert not bad, (
        "the CLI speaks the API: it opens no database and no Ray connection:\n" + "\n".join(bad)
    )


def test_the_api_does_not_import_its_clients() -> None:
    bad = forbidden(edges_under("orchestrator.api"), "orchestrator.cli", "orchestrator.client")
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
