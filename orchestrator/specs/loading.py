"""Job specs: one typed pydantic model per job kind, chosen by the top-level ``kind:`` key.

``load_spec`` reads YAML, applies ``--set a.b=value`` overrides and validates, reporting
every problem at once with its YAML key (and line, when it came from a file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.specs.common import JobSpecBase
from orchestrator.specs.errors import SpecError
from orchestrator.specs.models import EvaluateJobSpec, FinetuneJobSpec, PretrainJobSpec
from orchestrator.specs.tokenizer import TokenizerJobSpec

SPEC_CLASSES: dict[str, type[JobSpecBase]] = {
    "tokenizer": TokenizerJobSpec,
    "pretrain": PretrainJobSpec,
    "finetune": FinetuneJobSpec,
    "evaluate": EvaluateJobSpec,
}

LineMap = dict[tuple[str, ...], int]


def _line_map(node: yaml.Node, path: tuple[str, ...] = (), out: LineMap | None = None) -> LineMap:
    """YAML key path -> 1-based line number, for error messages."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            out[child] = key.start_mark.line + 1
            _line_map(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, (*path, str(i)), out)
    return out


def read_yaml(path: str | Path) -> tuple[dict[str, Any], LineMap]:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"spec file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{where}: malformed YAML: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a job spec must be a YAML mapping with a 'kind:' key")
    return data, _line_map(node) if node is not None else {}


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``a.b=value`` sets data['a']['b']; the value is parsed as YAML (numbers, lists...)."""
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. tokenizer.vocab_size=8000")
            continue
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"--set {key}: {part} is not a mapping")
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise SpecError("invalid --set overrides", problems)
    return data


def _format_error(err: Any, line_map: LineMap, source: str | None) -> str:
    loc = tuple(str(p) for p in err["loc"])
    key = ".".join(loc) or "(top level)"
    line = next((line_map[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in line_map), None)
    where = f"{source}:{line}: " if source and line else (f"{source}: " if source else "")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (not part of this job kind's spec)"
    return f"{where}{key}: {msg}"


def parse_spec(
    data: dict[str, Any],
    *,
    source: str | None = None,
    base_dir: str | None = None,
    check_files: bool = True,
    line_map: LineMap | None = None,
    allowed_roots: list[str] | None = None,
    forbidden_roots: list[str] | None = None,
) -> JobSpecBase:
    """Validate a spec mapping; raise SpecError listing every problem. ``allowed_roots`` and
    ``forbidden_roots`` confine the data files it may name (see ``common.resolve_paths``)."""
    line_map = line_map or {}
    kind = data.get("kind")
    if kind not in SPEC_CLASSES:
        known = ", ".join(sorted(SPEC_CLASSES))
        what = "is missing" if kind is None else f"{kind!r} is not a job kind"
        raise SpecError(
            f"invalid job spec{f' {source}' if source else ''}",
            [f"kind: {what}; expected one of: {known}"],
        )
    context = {
        "base_dir": base_dir or os.getcwd(),
        "check_files": check_files,
        "allowed_roots": allowed_roots,
        "forbidden_roots": forbidden_roots,
    }
    try:
        return SPEC_CLASSES[kind].model_validate(data, context=context)
    except ValidationError as exc:
        problems = [_format_error(e, line_map, source) for e in exc.errors()]
        raise SpecError(
            f"invalid {kind} spec{f' {source}' if source else ''} "
            f"({len(problems)} problem{'s' if len(problems) > 1 else ''})",
            problems,
        ) from None


def load_spec(
    path: str | Path, overrides: list[str] | None = None, check_files: bool = True
) -> JobSpecBase:
    """Read, override and validate a spec file. Relative data paths resolve against the
    current directory, as in any command-line tool."""
    data, line_map = read_yaml(path)
    apply_overrides(data, list(overrides or []))
    return parse_spec(data, source=str(path), check_files=check_files, line_map=line_map)


__all__ = [
    "SPEC_CLASSES",
    "EvaluateJobSpec",
    "FinetuneJobSpec",
    "JobSpecBase",
    "PretrainJobSpec",
    "SpecError",
    "TokenizerJobSpec",
    "load_spec",
    "parse_spec",
]
