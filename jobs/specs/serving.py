"""What an endpoint is asked to do: its serving options, and the inference requests it takes.

Pure pydantic and stdlib, so the CLI and unit tests use it without torch or Ray. Request
bodies follow the Hugging Face inference JSON::

    {"inputs": "text" | ["text", ...] | {"text": ..., "text_pair": ...} | [{...}, ...],
     "parameters": {"top_k": 3}}

Every problem is a ``RequestError`` with an HTTP status (4xx) and a message that names the
field, so a bad request costs its sender one clear answer and the replica nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Task = Literal["text-classification", "fill-mask", "embeddings"]
TASKS: tuple[str, ...] = ("text-classification", "fill-mask", "embeddings")
INDEX_APP = "orch-models-index"  # the Serve app that answers 404s under /models
# Serve's logs for the proxy and our replicas: no line per request (measurable CPU on a
# small machine), warnings and errors kept.
SERVE_LOGGING = {"enable_access_log": False, "log_level": "WARNING"}


class ServeOptions(BaseModel):
    """How a model version is served (the `orch serve` flags)."""

    model_config = ConfigDict(extra="forbid")

    task: Task = Field(description="What the endpoint computes; default: the model's task.")
    replicas: int = Field(1, ge=1, description="Fixed number of replicas (without autoscale).")
    autoscale: tuple[int, int] | None = Field(
        None, description="(min, max) replicas, scaled by ongoing requests."
    )
    cpus_per_replica: float = Field(1.0, gt=0, description="Logical CPUs each replica holds.")
    gpus_per_replica: float = Field(0.0, ge=0, description="GPUs each replica holds.")
    max_batch_size: int = Field(32, ge=1, le=1024, description="Requests merged into a batch.")
    batch_wait_ms: float | None = Field(
        None,
        ge=0,
        description="The longest a batch waits to fill up, only under concurrent load (a "
        "lone request never waits); default 40 on CPU (slow forward passes: bigger batches "
        "pay), 5 on GPU.",
    )
    max_batch_tokens: int | None = Field(
        None,
        ge=16,
        description="Padded tokens per forward pass; default 512 on CPU (measured fastest: "
        "short padded passes), 16384 on GPU.",
    )
    quantize: Literal["none", "int8"] = Field(
        "none",
        description="int8: dynamic int8 quantization of the linear layers at load (CPU only; "
        "measured 2.3x faster MiniLM forward passes, SST-2 dev accuracy 0.891 vs 0.894).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Weights and activations at inference; auto: bfloat16 on GPUs that have "
        "it (else float16), float32 on CPU. bfloat16 on a CPU with AVX512-BF16 or AMX "
        "measured 1.5-1.7x faster MiniLM with the same SST-2 dev answers.",
    )
    max_input_chars: int = Field(20_000, ge=1, description="Longer inputs are refused (413).")
    max_items: int = Field(256, ge=1, description="Inputs in one request; more are refused.")
    api_key_sha256: str | None = Field(None, description="SHA-256 of the API key, if any.")

    @model_validator(mode="after")
    def _check(self) -> ServeOptions:
        if self.autoscale and not 0 <= self.autoscale[0] <= self.autoscale[1]:
            raise ValueError("autoscale: MIN:MAX needs 0 <= MIN <= MAX")
        if self.autoscale and self.autoscale[1] < 1:
            raise ValueError("autoscale: MAX must be at least 1")
        if self.quantize != "none" and self.gpus_per_replica > 0:
            raise ValueError("quantize: int8 quantization is for CPU replicas, not GPUs")
        if self.quantize != "none" and self.dtype not in ("auto", "float32"):
            raise ValueError(f"dtype: int8 quantization starts from float32, not {self.dtype}")
        return self

    @property
    def max_body_bytes(self) -> int:
        """The longest body a valid request can have (every input and pair at the character
        limit, each character as a 6-byte JSON escape), plus room for the rest."""
        return 2 * self.max_items * self.max_input_chars * 6 + 65_536

    @property
    def max_ongoing_requests(self) -> int:
        """Serve caps a batch at this (default 5), and a proxy that finds every replica full
        backs off and retries (measured: 5 s p50 at concurrency 64 with a cap of 32), so
        queue generously in the replica: four batches' worth."""
        return 4 * self.max_batch_size


def parse_autoscale(value: str) -> tuple[int, int]:
    """``MIN:MAX`` -> (min, max); ValueError with a readable message otherwise."""
    lo, sep, hi = value.partition(":")
    if not sep or not lo.strip().isdigit() or not hi.strip().isdigit():
        raise ValueError(f"--autoscale takes MIN:MAX (for example 1:4), not {value!r}")
    return int(lo), int(hi)


# --- requests -------------------------------------------------------------------------------


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
