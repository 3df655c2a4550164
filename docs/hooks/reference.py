"""MkDocs hook: the reference pages are generated from the code, so they cannot drift from it.

A page holds a marker line, replaced when the site is built:

- ``<!-- reference:specs -->``: every job spec's fields (``orchestrator.specs``) and an
  endpoint's options, one table per section, from the pydantic models' descriptions;
- ``<!-- reference:settings -->``: every setting (``orchestrator.config.Settings``) with its
  environment variable and default;
- ``<!-- reference:cli -->``: every ``orch`` command with its usage, help and options (click);
- ``<!-- reference:vocabulary -->``: job states, kinds and tasks.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo

MARKER = re.compile(r"^<!-- reference:(\w+) -->$", re.MULTILINE)
FIRST = ("kind", "name", "description")  # every spec's own fields lead its table


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda m: GENERATORS[m.group(1)](), markdown)


# --- specs -----------------------------------------------------------------------------------


def spec_reference() -> str:
    from orchestrator.specs import SPEC_CLASSES
    from orchestrator.specs.serving import ServeOptions

    parts = []
    for kind, model in SPEC_CLASSES.items():
        parts.append(f"## `kind: {kind}`\n\n{doc(model)}\n")
        parts += [section(path, sub) for path, sub in sections(model, kind)]
    parts.append(f"## Endpoint options (`orch serve`)\n\n{doc(ServeOptions)}\n")
    parts.append(table(ServeOptions))
    return "\n".join(parts)


def sections(model: type[BaseModel], path: str) -> Iterator[tuple[str, type[BaseModel]]]:
    """The model itself, then each nested section, depth first, with its YAML path."""
    yield path, model
    for name, info in model.model_fields.items():
        for sub in nested_models(info.annotation):
            yield from sections(sub, f"{path}.{name}")


def section(path: str, model: type[BaseModel]) -> str:
    if "." not in path:
        return table(model)
    key = path.split(".", 1)[1]
    return f"### `{key}`\n\n{doc(model)}\n\n{table(model)}"


def table(model: type[BaseModel]) -> str:
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, info in sorted(model.model_fields.items(), key=lambda item: item[0] not in FIRST):
        cells = (f"`{name}`", type_name(info.annotation), default(info), describe(info))
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def nested_models(annotation: Any) -> list[type[BaseModel]]:
    found = [a for a in (annotation, *typing.get_args(annotation)) if is_model(a)]
    return [a for a in found if a is not BaseModel]


def is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if annotation is type(None):
        return "null"
    if is_model(annotation):
        return "section (below)"
    return getattr(annotation, "__name__", str(annotation))


def default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if is_model(type(value)):
        return "(its defaults)"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        value = str(value).lower()
    if value is None:
        return "null"
    return f"`{value}`" if value != "" else '`""`'


def describe(info: FieldInfo) -> str:
    text = info.description or ""
    bounds = [str(m) for m in info.metadata if type(m).__name__ in ("Gt", "Ge", "Lt", "Le")]
    if bounds:
        text += " (" + ", ".join(bound_text(b) for b in bounds) + ")"
    return text.replace("\n", " ")


def bound_text(bound: str) -> str:
    """``Ge(ge=1)`` -> ``>= 1``."""
    name, value = re.match(r"(\w+)\(\w+=(.*)\)", bound).groups()  # type: ignore[union-attr]
    return {"Gt": ">", "Ge": ">=", "Lt": "<", "Le": "<="}[name] + " " + value


def doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


# --- settings ----------------------------------------------------------------------------------


def settings_reference() -> str:
    from orchestrator.config import Settings

    rows = [
        "| setting (config file) | environment variable | default | description |",
        "|---|---|---|---|",
    ]
    for name, info in Settings.model_fields.items():
        value = "computed" if info.default_factory else default(info)
        rows.append(f"| `{name}` | `ORCH_{name.upper()}` | {value} | {describe(info)} |")
    return "\n".join(rows) + "\n"


# --- the CLI -----------------------------------------------------------------------------------


def cli_reference() -> str:
    from orchestrator.cli import cli

    return "\n".join(command_doc(cmd, path) for path, cmd in commands(cli, "orch"))


def commands(group: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    if isinstance(group, click.Group):
        for name in sorted(group.commands):
            yield from commands(group.commands[name], f"{path} {name}")
    else:
        yield path, group


def command_doc(command: click.Command, path: str) -> str:
    ctx = click.Context(command, info_name=path)
    usage = " ".join(command.collect_usage_pieces(ctx))
    help_text = inspect.cleandoc(command.help or "")
    lines = [f"### `{path}`", "", f"```\n{path} {usage}\n```", "", help_text]
    options = [p for p in command.params if isinstance(p, click.Option)]
    if options:
        lines += ["", "| option | description |", "|---|---|"]
        for option in options:
            record = option.get_help_record(ctx)
            if record:
                flags, text = record  # a pipe inside a code span needs no escape
                lines.append(f"| `{flags}` | {text.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


# --- the vocabulary ----------------------------------------------------------------------------


def vocabulary_reference() -> str:
    from orchestrator.specs.vocabulary import vocabulary

    return "\n".join(
        f"- **{key.replace('_', ' ')}**: " + ", ".join(f"`{v}`" for v in values)
        for key, values in vocabulary().items()
    )


GENERATORS: dict[str, Callable[[], str]] = {
    "specs": spec_reference,
    "settings": settings_reference,
    "cli": cli_reference,
    "vocabulary": vocabulary_reference,
}
