"""The CLI's side of the API: where the server is, the user's token, and calls that turn the
server's error answers back into the errors it raised (same message and exit code).

The server: ``ORCH_SERVER_URL`` (setting ``server_url``) with ``ORCH_TOKEN`` or the file
``token_file``; else this machine's local server, started when none runs, with the local
admin's token (``HOME/token``). Connection failures are
retried with backoff, then end in one line naming the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from orchestrator.config import Settings, load_settings
from orchestrator.errors import (
    AccessError,
    ClusterError,
    EndpointError,
    JobFailedError,
    NotFoundError,
    OrchestratorError,
    ServerError,
    SpecError,
    UsageError,
)

TIMEOUT = (10.0, 600.0)  # connect, read (a deploy or a scheduler start takes minutes)
# Connection failures happen before a request is sent, so retrying them is safe for every
# method; nothing is retried once the server has the request. Six retries wait about 12 s
# in all (0.25 s, doubling, at most 4 s each).
RETRY = Retry(
    total=None,
    connect=6,
    read=0,
    status=0,
    other=0,
    redirect=2,
    backoff_factor=0.25,
    backoff_max=4.0,
    allowed_methods=None,
    raise_on_status=False,
)
BY_NAME: dict[str, type[OrchestratorError]] = {
    cls.__name__: cls
    for cls in (
        AccessError,
        ClusterError,
        EndpointError,
        JobFailedError,
        NotFoundError,
        ServerError,
        UsageError,
    )
}


class Api:
    """Calls to one API server as one user."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.mount("http://", HTTPAdapter(max_retries=RETRY))
        self.session.mount("https://", HTTPAdapter(max_retries=RETRY))

    def request(self, method: str, path: str, stream: bool = False, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", TIMEOUT)
        try:
            resp = self.session.request(method, self.url + path, stream=stream, **kw)
        except requests.ConnectionError as exc:
            raise ServerError(
                f"cannot reach the API server at {self.url}: {_reason(exc)}",
                hint="is it running? `orch cluster up` starts the local one; "
                "ORCH_SERVER_URL names another",
            ) from None
        except requests.Timeout:
            raise ServerError(f"the API server at {self.url} did not answer in time") from None
        if resp.status_code >= 400:
            raise error_of(resp)
        return resp

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=_clean(params)).json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body or {}).json()

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path).json()

    def text(self, path: str, **params: Any) -> str:
        return self.request("GET", path, params=_clean(params)).text

    def stream(self, path: str, **params: Any) -> Iterator[str]:
        """A text answer as it arrives, for as long as it lasts (no read timeout)."""
        with self.request(
            "GET", path, stream=True, params=_clean(params), timeout=(TIMEOUT[0], None)
        ) as resp:
            resp.encoding = resp.encoding or "utf-8"
            try:
                yield from resp.iter_content(chunk_size=None, decode_unicode=True)
            except requests.RequestException as exc:
                raise ServerError(f"the stream from {self.url} broke off: {_reason(exc)}") from None


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None and v != () and v != []}


def _reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "timed out"):
        if known in text:
            return known.lower()
    return type(exc).__name__


def error_of(resp: requests.Response) -> Exception:
    """The error an API answer stands for."""
    try:
        body = resp.json()
    except ValueError:
        body = {"detail": resp.text[:500] or resp.reason}
    detail, hint, kind = str(body.get("detail")), body.get("hint"), body.get("error", "")
    if kind == "SpecError":
        return SpecError(detail)
    if kind in BY_NAME:
        return BY_NAME[kind](detail, hint)
    status = resp.status_code
    if status in (401, 403):
        if status == 401:
            hint = hint or "set ORCH_TOKEN or token_file to your token (`orch users add`)"
        return AccessError(detail, hint)
    if status == 404:
        return NotFoundError(detail, hint)
    if status in (400, 409, 413, 422):
        return UsageError(detail, hint)
    return ServerError(f"the API server failed ({status}): {detail}", hint)


def read_token(path: Path) -> str:
    try:
        return path.expanduser().read_text().strip()
    except OSError as exc:
        raise AccessError(
            f"cannot read the token file {path}: {exc.strerror}",
            hint="set ORCH_TOKEN, or token_file to a file holding your token",
        ) from None


@cache
def api(start: bool = True) -> Api:
    """The API this process talks to; ``start``: start the local server when none runs."""
    settings = load_settings()
    return connect(settings, start)


def connect(settings: Settings, start: bool = True) -> Api:
    if settings.server_url:  # never this machine's local admin token: it is not for them
        return Api(settings.server_url, token_of(settings, None))
    from orchestrator.api import local

    info = local.ensure_server(settings) if start else local.running_server(settings)
    if info is None:
        raise ClusterError(
            "no cluster is running for this home (no API server answers)",
            hint="`orch cluster up` starts one",
        )
    return Api(info["url"], token_of(settings, settings.local_token_path))


def token_of(settings: Settings, default_file: Path | None) -> str:
    """``ORCH_TOKEN``, else the ``token_file``, else ``default_file``."""
    if settings.token is not None:
        return settings.token.get_secret_value()
    path = settings.token_file or default_file
    if path is None:
        raise AccessError(
            f"no token for {settings.server_url}",
            hint="set ORCH_TOKEN, or token_file to a file holding your token",
        )
    return read_token(path)
