"""HTTP request parsing for an endpoint: the Hugging Face inference JSON, validated.

Pure stdlib, so unit tests use it without torch or Ray. Request bodies look like::

    {"inputs": "text" | ["text", ...] | {"text": ..., "text_pair": ...} | [{...}, ...],
     "parameters": {"top_k": 3}}

Every problem is a ``RequestError`` with an HTTP status (4xx) and a message that names the
field, so a bad request costs its sender one clear answer and the replica nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class RequestError(Exception):
    """A request the endpoint refuses: HTTP status, message and the field it concerns."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def __reduce__(self):  # travels from the batch method back to the caller
        return (type(self), (self.status, self.message, self.field))

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.field:
            out["field"] = self.field
        return out


@dataclass
class Request:
    """A validated request: its texts (and pairs), whether one input came, and parameters."""

    texts: list[str]
    pairs: list[str] | None = None
    single: bool = False
    params: dict[str, Any] = field(default_factory=dict)


# parameter -> (type, default, lowest allowed)
PARAMETERS: dict[str, dict[str, tuple[type, Any, int | None]]] = {
    "text-classification": {"top_k": (int, 1, 1)},
    "fill-mask": {"top_k": (int, 5, 1)},
    "embeddings": {"normalize": (bool, True, None)},
}
IGNORED_PARAMETERS = ("truncation",)  # always on: inputs are cut to the model's max length


def parse_request(raw: bytes, task: str, max_items: int, max_chars: int) -> Request:
    """Validate an inference request body (bytes) for ``task``."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(400, "the body's JSON is nested too deeply") from None
    if not isinstance(body, dict):
        raise RequestError(422, 'the body must be a JSON object: {"inputs": ...}')
    unknown = sorted(set(body) - {"inputs", "parameters", "options"})
    if unknown:
        raise RequestError(422, f"unknown field(s) {', '.join(unknown)}", unknown[0])
    if "inputs" not in body:
        raise RequestError(422, 'the field "inputs" is missing', "inputs")
    inputs = body["inputs"]
    single = not isinstance(inputs, list)
    items = [inputs] if single else inputs
    if not items:
        raise RequestError(422, '"inputs" is an empty list', "inputs")
    if len(items) > max_items:
        raise RequestError(
            413, f"{len(items)} inputs in one request; the limit is {max_items}", "inputs"
        )
    texts: list[str] = []
    pairs: list[str | None] = []
    for i, item in enumerate(items):
        where = "inputs" if single else f"inputs[{i}]"
        text, pair = _parse_item(item, where, task, max_chars)
        texts.append(text)
        pairs.append(pair)
    with_pair = [p is not None for p in pairs]
    if any(with_pair) and not all(with_pair):
        raise RequestError(422, "either every input has a text_pair or none does", "inputs")
    params = parse_parameters(body.get("parameters"), task)
    both = [p for p in pairs if p is not None]
    return Request(texts, both if all(with_pair) else None, single, params)


def _parse_item(item: Any, where: str, task: str, max_chars: int) -> tuple[str, str | None]:
    if isinstance(item, str):
        return _check_text(item, where, max_chars), None
    if not isinstance(item, dict):
        raise RequestError(
            422,
            f"{where} must be a string or an object with text and text_pair, "
            f"not {_json_type(item)}",
            where,
        )
    unknown = sorted(set(item) - {"text", "text_pair"})
    if unknown:
        raise RequestError(422, f"{where}: unknown field(s) {', '.join(unknown)}", where)
    if "text" not in item:
        raise RequestError(422, f"{where}.text is missing", f"{where}.text")
    text = _check_text(item["text"], f"{where}.text", max_chars)
    if item.get("text_pair") is None:
        return text, None
    if task != "text-classification":
        raise RequestError(422, f"text_pair is only for text-classification, not {task}", where)
    return text, _check_text(item["text_pair"], f"{where}.text_pair", max_chars)


def _check_text(value: Any, where: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise RequestError(422, f"{where} must be a string, not {_json_type(value)}", where)
    if not value.strip():
        raise RequestError(422, f"{where} is empty", where)
    if len(value) > max_chars:
        raise RequestError(
            413, f"{where} has {len(value):,} characters; the limit is {max_chars:,}", where
        )
    return value


def parse_parameters(raw: Any, task: str) -> dict[str, Any]:
    """Known parameters of ``task`` with their defaults filled in."""
    spec = PARAMETERS[task]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RequestError(
            422, f'"parameters" must be an object, not {_json_type(raw)}', "parameters"
        )
    unknown = sorted(set(raw) - set(spec) - set(IGNORED_PARAMETERS))
    if unknown:
        known = ", ".join(sorted(spec))
        raise RequestError(
            422,
            f"unknown parameter(s) {', '.join(unknown)} for {task}; known: {known}",
            f"parameters.{unknown[0]}",
        )
    out: dict[str, Any] = {}
    for name, (kind, default, lowest) in spec.items():
        value: Any = raw.get(name, default)
        # bool is an int in Python; refuse `true` where a number is expected
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RequestError(
                422,
                f"parameters.{name} must be {kind.__name__}, not {_json_type(value)}",
                f"parameters.{name}",
            )
        if lowest is not None and isinstance(value, int) and value < lowest:
            raise RequestError(
                422, f"parameters.{name} must be at least {lowest}", f"parameters.{name}"
            )
        out[name] = value
    return out


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number"
