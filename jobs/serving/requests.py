"""HTTP request parsing for an endpoint: the Hugging Face inference JSON, validated.

Pure stdlib, so unit tests use it without torch or Ray. Request bodies look like::

    {"inputs": "text" | ["text", ...] | {"text": ..., "text_pair": ...} | [{...}, ...],
     "parameters": {"top_k": 3}}

and, for question-answering, ``{"inputs": {"question": ..., "context": ...} | [{...}, ...]}``.

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
    """A validated request: its texts (and pairs), whether one input came, and parameters.

    For question-answering, ``texts`` are the questions and ``pairs`` their contexts."""

    texts: list[str]
    pairs: list[str] | None = None
    single: bool = False
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Param:
    """One parameter of a task: its JSON type, its default (None: optional, the pipeline's own
    default applies) and the bounds it must keep."""

    kind: type
    default: Any = None
    lowest: int | None = None
    highest: int | None = None
    choices: tuple[str, ...] | None = None


AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")
DEFAULT_HYPOTHESIS = "This example is {}."
# A candidate label or hypothesis template is a short phrase: longer ones are refused (413)
# before they reach the tokenizer (the hypothesis must also fit the model: see
# PipelinePredictor.check).
MAX_LABEL_CHARS = 1_000
# token-classification's ignore_labels name some of the model's labels: a few dozen at most
MAX_IGNORED_LABELS = 64

PARAMETERS: dict[str, dict[str, Param]] = {
    "text-classification": {"top_k": Param(int, 1, lowest=1)},
    "fill-mask": {"top_k": Param(int, 5, lowest=1)},
    "embeddings": {"normalize": Param(bool, True)},
    "token-classification": {
        # "simple" by default, as the Hugging Face Inference API answers (the pipeline's own
        # default is "none": one entry per token).
        "aggregation_strategy": Param(str, "simple", choices=AGGREGATION_STRATEGIES),
        "ignore_labels": Param(list),  # default: the pipeline's ["O"]
        "stride": Param(int, lowest=0),  # long texts in overlapping windows, not truncated
    },
    "question-answering": {
        # at most 50: answers found in every window are merged by text, pairwise
        "top_k": Param(int, 1, lowest=1, highest=50),
        "handle_impossible_answer": Param(bool, False),
        "max_answer_len": Param(int, 15, lowest=1),
        "doc_stride": Param(int, lowest=0),  # default: min(max_seq_len // 2, 128)
        "max_seq_len": Param(int, lowest=8),  # default: min(the model's length, 384)
        "max_question_len": Param(int, 64, lowest=1),
    },
    "zero-shot-classification": {
        "candidate_labels": Param(list),  # required; a list or a comma-separated string
        "hypothesis_template": Param(str, DEFAULT_HYPOTHESIS),
        "multi_label": Param(bool, False),
    },
    "feature-extraction": {},
}
KIND_NAMES: dict[type, str] = {list: "an array", str: "a string"}
IGNORED_PARAMETERS = ("truncation",)  # always on: inputs are cut to the model's max length


def parse_request(
    raw: bytes, task: str, max_items: int, max_chars: int, max_labels: int = 32
) -> Request:
    """Validate an inference request body (bytes) for ``task`` (``max_labels``: candidate
    labels of zero-shot classification)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(400, "the body's JSON is nested too deeply") from None
    if not isinstance(body, dict):
        raise RequestError(422, 'the body must be a JSON object: {"inputs": ...}')
    unknown = sorted(_printable(name) for name in set(body) - {"inputs", "parameters", "options"})
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
        parse_item = _parse_question if task == "question-answering" else _parse_item
        text, pair = parse_item(item, where, task, max_chars)
        texts.append(text)
        pairs.append(pair)
    with_pair = [p is not None for p in pairs]
    if any(with_pair) and not all(with_pair):
        raise RequestError(422, "either every input has a text_pair or none does", "inputs")
    params = parse_parameters(body.get("parameters"), task, max_labels)
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
    unknown = sorted(_printable(name) for name in set(item) - {"text", "text_pair"})
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


def _parse_question(item: Any, where: str, task: str, max_chars: int) -> tuple[str, str]:
    """A question-answering input: ``{"question": ..., "context": ...}`` -> (question, context)."""
    if not isinstance(item, dict):
        raise RequestError(
            422,
            f"{where} must be an object with question and context, not {_json_type(item)}",
            where,
        )
    unknown = sorted(_printable(name) for name in set(item) - {"question", "context"})
    if unknown:
        raise RequestError(422, f"{where}: unknown field(s) {', '.join(unknown)}", where)
    texts = []
    for name in ("question", "context"):
        if name not in item:
            raise RequestError(422, f"{where}.{name} is missing", f"{where}.{name}")
        texts.append(_check_text(item[name], f"{where}.{name}", max_chars))
    return texts[0], texts[1]


def _check_text(value: Any, where: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise RequestError(422, f"{where} must be a string, not {_json_type(value)}", where)
    if not value.strip():
        raise RequestError(422, f"{where} is empty", where)
    if len(value) > max_chars:
        raise RequestError(
            413, f"{where} has {len(value):,} characters; the limit is {max_chars:,}", where
        )
    _check_unicode(value, where)
    return value


def _check_unicode(value: str, where: str) -> None:
    """JSON can escape a lone UTF-16 surrogate ("\\ud800") that no UTF-8 text holds: the
    tokenizer, and the answer's encoding, would fail on it, so it is the sender's error."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(
            422,
            f"{where} is not valid Unicode text: a lone surrogate "
            f"{ascii(value[exc.start])[1:-1]} at character {exc.start}",
            where,
        ) from None


def _printable(name: str) -> str:
    """A name from the request, safe to echo in a JSON answer (lone surrogates escaped)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def parse_parameters(raw: Any, task: str, max_labels: int = 32) -> dict[str, Any]:
    """Known parameters of ``task`` with their defaults filled in (None: the pipeline's)."""
    spec = PARAMETERS[task]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RequestError(
            422, f'"parameters" must be an object, not {_json_type(raw)}', "parameters"
        )
    unknown = sorted(_printable(name) for name in set(raw) - set(spec) - set(IGNORED_PARAMETERS))
    if unknown:
        known = ", ".join(sorted(spec)) or "none"
        raise RequestError(
            422,
            f"unknown parameter(s) {', '.join(unknown)} for {task}; known: {known}",
            f"parameters.{unknown[0]}",
        )
    out: dict[str, Any] = {}
    for name, param in spec.items():
        where = f"parameters.{name}"
        value: Any = raw.get(name, param.default)
        if name == "candidate_labels":
            out[name] = _candidate_labels(value, where, max_labels)
            continue
        if value is None and param.default is None:  # optional, not given
            out[name] = None
            continue
        if not _has_kind(value, param.kind):
            kind = KIND_NAMES.get(param.kind, param.kind.__name__)
            raise RequestError(422, f"{where} must be {kind}, not {_json_type(value)}", where)
        if param.lowest is not None and value < param.lowest:
            raise RequestError(422, f"{where} must be at least {param.lowest}", where)
        if param.highest is not None and value > param.highest:
            raise RequestError(422, f"{where} must be at most {param.highest}", where)
        if param.choices is not None:
            value = _choice(value, param.choices, where)
        if name == "ignore_labels":
            if len(value) > MAX_IGNORED_LABELS:
                raise RequestError(
                    413,
                    f"{where} has {len(value)} labels; the limit is {MAX_IGNORED_LABELS}",
                    where,
                )
            for i, label in enumerate(value):
                _check_text(label, f"{where}[{i}]", MAX_LABEL_CHARS)
        if name == "hypothesis_template":
            _check_template(value, where)
        out[name] = value
    if out.get("stride") is not None and out.get("aggregation_strategy") == "none":
        raise RequestError(
            422,
            "parameters.stride needs an aggregation_strategy other than none (the windows' "
            "overlapping entities are merged)",
            "parameters.stride",
        )
    return out


def _has_kind(value: Any, kind: type) -> bool:
    """Whether a JSON value is of ``kind`` (bool is an int in Python: `true` is no number)."""
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def _choice(value: str, choices: tuple[str, ...], where: str) -> str:
    _check_unicode(value, where)
    if value.lower() not in choices:
        raise RequestError(
            422, f"{where} must be one of {', '.join(choices)}, not {value[:50]!r}", where
        )
    return value.lower()


def _candidate_labels(value: Any, where: str, max_labels: int) -> list[str]:
    """Zero-shot labels: a list of non-empty strings, or one string of comma-separated labels
    (split as the pipeline splits it)."""
    if value is None:
        raise RequestError(422, f"{where} is required for zero-shot-classification", where)
    if isinstance(value, str):
        _check_unicode(value, where)
        value = [label.strip() for label in value.split(",") if label.strip()]
    if not isinstance(value, list):
        raise RequestError(
            422, f"{where} must be an array of strings, not {_json_type(value)}", where
        )
    if not value:
        raise RequestError(422, f"{where} holds no label", where)
    if len(value) > max_labels:
        raise RequestError(
            413, f"{where} has {len(value)} labels; the limit is {max_labels}", where
        )
    return [_check_text(label, f"{where}[{i}]", MAX_LABEL_CHARS) for i, label in enumerate(value)]


def _check_template(template: str, where: str) -> None:
    """The template must place the label where "{}" stands, as str.format does."""
    _check_text(template, where, MAX_LABEL_CHARS)
    probe = "\x00label\x00"
    try:
        filled = template.format(probe)
    except (IndexError, KeyError, ValueError):
        filled = ""
    if "{}" not in template or probe not in filled:
        raise RequestError(
            422, f'{where} must hold "{{}}" where the label goes (and no other braces)', where
        )


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number"
