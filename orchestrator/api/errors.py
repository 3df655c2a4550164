"""The one shape of every error answer, documented on every route of the schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, naming the field, file or line.")
    error: str = Field(description="Its kind: SpecError, NotFoundError, UsageError, ...")
    hint: str | None = Field(None, description="What to do about it.")
    problems: list[str] | None = Field(None, description="Every problem of an invalid input.")


def described(text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: described("Bad usage (a name, an alias, a reference)"),
    401: described("No valid token"),
    403: described("The token's role may not do this, or a cross-origin change"),
    404: described("No such job, model, tokenizer, endpoint or user"),
    409: described("Not possible in the object's current state"),
    413: described("The request body is too large"),
    422: described("The body, a parameter or a job spec is invalid: every problem is named"),
    502: described("The endpoint or its cluster failed to answer"),
    503: described("The Ray cluster cannot be reached"),
}


# For routes that answer text (logs, metrics): the success is text, errors stay JSON.
TEXT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Text",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}
