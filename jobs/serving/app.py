"""Ray Serve deployments: one application per served model, plus a small index at /models.

``ModelServer`` answers ``POST /models/NAME`` with the Hugging Face inference JSON and
``GET /models/NAME`` with what it serves. The model version arrives as ``user_config``: a
promotion changes only that, so Serve reconfigures the running replicas in place (the new
weights load beside the old ones, then swap) and no request fails during the switch.
Requests are merged by ``@serve.batch``; the forward pass runs in a thread under
``torch.inference_mode`` so the replica keeps accepting requests meanwhile. Each replica
records its endpoint's requests, errors, latency and batch sizes (``EndpointMetrics``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import logging
import time
from pathlib import Path
from typing import Any

from ray import serve
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse

from jobs.serving.requests import Request, RequestError, parse_request
from orchestrator.specs.serving import SERVE_LOGGING, ServeOptions

log = logging.getLogger("ray.serve")
HERE = Path(__file__).parent
# what a deployment's code version hashes: a change to any of it restarts the replicas
SERVING_CODE = (
    HERE / "app.py",
    HERE / "model.py",
    HERE / "direct.py",
    HERE / "pipelines.py",
    HERE / "predictors.py",
    HERE / "question_answering.py",
    HERE / "requests.py",
    Path(inspect.getfile(ServeOptions)),
)


def error_response(exc: RequestError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


class EndpointMetrics:
    """What a replica records for its endpoint, with ``ray.util.metrics``: Ray's metrics
    agent on each node exports them (as ``ray_orch_endpoint_*``, one series per replica) and
    the API server's ``/metrics`` relays them. A record costs a few microseconds.

    Ray 2.60 exports a histogram's ``_sum`` as if every value sat at its bucket's midpoint
    (a batch of 1 counts 0.5): the buckets and ``_count`` are exact, the sum is not. Hence
    ``batched_requests``, exact, for the mean batch size."""

    LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
    BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256]

    def __init__(self, endpoint: str) -> None:
        from ray.util.metrics import Counter, Histogram

        tags, keys = {"endpoint": endpoint}, ("endpoint",)
        self.requests = Counter(
            "orch_endpoint_requests", "Requests the endpoint answered", keys
        ).set_default_tags(tags)
        self.errors = Counter(
            "orch_endpoint_errors",
            "Requests answered 4xx or 5xx (code: the class)",
            (*keys, "code"),
        ).set_default_tags(tags)
        self.latency = Histogram(
            "orch_endpoint_latency_seconds",
            "Time in the replica, from request to answer",
            self.LATENCY_BUCKETS_S,
            keys,
        ).set_default_tags(tags)
        self.batch_size = Histogram(
            "orch_endpoint_batch_size",
            "Requests per batch of the model's forward pass",
            self.BATCH_BUCKETS,
            keys,
        ).set_default_tags(tags)
        self.batched_requests = Counter(
            "orch_endpoint_batched_requests",
            "Requests answered in the model's batches (per batch_size_count: the mean batch)",
            keys,
        ).set_default_tags(tags)

    def answered(self, status: int, seconds: float) -> None:
        self.requests.inc()
        self.latency.observe(seconds)
        if status >= 400:
            self.errors.inc(tags={"code": f"{status // 100}xx"})

    def batched(self, size: int) -> None:
        self.batch_size.observe(size)
        self.batched_requests.inc(size)


def check_api_key(request: HTTPRequest, key_sha256: str | None) -> None:
    """401 unless the request carries the key (``Authorization: Bearer KEY``)."""
    if not key_sha256:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    digest = hashlib.sha256(given.strip().encode()).hexdigest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(digest, key_sha256):
        raise RequestError(401, "a valid API key is required: Authorization: Bearer KEY")


@serve.deployment(max_constructor_retry_count=3, health_check_period_s=5)
class ModelServer:
    """One model version behind an HTTP route; ``user_config`` says which version."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        import torch

        self.name = name
        self.options = ServeOptions.model_validate(options)
        self.predictor: Any = None
        self.model: dict[str, Any] = {}
        self.stats = {"requests": 0, "batches": 0, "texts": 0, "forward_s": 0.0}
        self.waiting = False  # whether batches wait to fill up (see _next_wait)
        self.metrics = EndpointMetrics(name)
        on_gpu = self.options.gpus_per_replica > 0 and torch.cuda.is_available()
        self.device = "cuda" if on_gpu else "cpu"
        wait_ms = self.options.batch_wait_ms
        self.batch_wait_s = (wait_ms if wait_ms is not None else 5 if on_gpu else 40) / 1000
        torch.set_num_threads(max(1, int(self.options.cpus_per_replica)))
        self._batched.set_max_batch_size(self.options.max_batch_size)
        self._batched.set_batch_wait_timeout_s(0.0)

    async def reconfigure(self, config: dict[str, Any]) -> None:
        """Load the version named by ``config`` beside the current one, then swap."""
        if config.get("path") == self.model.get("path"):
            return
        from jobs.serving.predictors import load_predictor

        predictor = await asyncio.to_thread(
            load_predictor,
            config["path"],
            self.options.task,
            self.options.max_batch_tokens,
            self.device,
            self.options.quantize,
            self.options.dtype,
        )
        self.predictor, self.model = predictor, dict(config)
        log.info("%s now serves %s", self.name, config.get("ref"))

    async def __call__(self, request: HTTPRequest) -> JSONResponse:
        started = time.perf_counter()
        response = await self._answer(request)
        self.metrics.answered(response.status_code, time.perf_counter() - started)
        return response

    async def _answer(self, request: HTTPRequest) -> JSONResponse:
        try:
            check_api_key(request, self.options.api_key_sha256)
            sub_path = request.url.path[len(request.scope.get("root_path", "")) :].strip("/")
            if sub_path:
                raise RequestError(404, f"no such path under /models/{self.name}: /{sub_path}")
            if request.method == "GET":
                return self._respond({"model": self.name, **self._describe()})
            if request.method != "POST":
                raise RequestError(405, "use POST with a JSON body (or GET for model details)")
            parsed = parse_request(
                await self._read_body(request),
                self.options.task,
                self.options.max_items,
                self.options.max_input_chars,
                self.options.max_candidate_labels,
            )
            self.predictor.check(parsed)
            result, ref = await self._batched(parsed)
            return self._respond(result, ref)
        except RequestError as exc:
            return error_response(exc)
        except Exception as exc:  # noqa: BLE001 - a JSON 500, the replica serving on
            log.exception("%s: inference failed", self.name)  # the details stay in the log
            message = f"inference failed ({type(exc).__name__}); the replica's log says more"
            return error_response(RequestError(500, message))

    async def _read_body(self, request: HTTPRequest) -> bytes:
        """The body, refused (413) as soon as it is longer than any valid request can be."""
        limit = self.options.max_body_bytes
        declared = request.headers.get("content-length", "")
        too_long = RequestError(413, f"the body is over {limit:,} bytes", "inputs")
        if declared.isdigit() and int(declared) > limit:
            raise too_long
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_long
            chunks.append(chunk)
        return b"".join(chunks)

    def _describe(self) -> dict[str, Any]:
        replica = serve.get_replica_context().replica_id.unique_id
        return {
            "version": self.model.get("ref"),
            "replica": replica,
            **self.predictor.describe(),
            "stats": dict(self.stats),
        }

    def _respond(self, body: Any, ref: str | None = None) -> JSONResponse:
        return JSONResponse(body, headers={"X-Model-Version": str(ref or self.model.get("ref"))})

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)  # both set in __init__
    async def _batched(self, requests: list[Request]) -> list[tuple[Any, str]]:
        predictor, ref = self.predictor, self.model.get("ref")  # one version per batch
        started = time.perf_counter()
        results = await asyncio.to_thread(predictor.run, requests)
        self.stats["forward_s"] += time.perf_counter() - started
        self.stats["batches"] += 1
        self.stats["requests"] += len(requests)
        self.stats["texts"] += sum(len(r.texts) for r in requests)
        self.metrics.batched(len(requests))
        self._batched.set_batch_wait_timeout_s(self._next_wait(len(requests)))
        return [(result, ref) for result in results]

    def _next_wait(self, last_batch: int) -> float:
        """How long the next batch waits to fill. Waiting starts once three or more
        requests came together (there is load worth batching) and stops when a request
        comes alone, so one or two clients see no added latency, while many clients get
        larger batches than a fixed wait gives them (docs/benchmarks.md, *Serving*)."""
        if last_batch >= 3:
            self.waiting = True
        elif last_batch == 1:
            self.waiting = False
        return self.batch_wait_s if self.waiting else 0.0


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
class ModelsIndex:
    """Answers for /models/<anything not served>: a JSON 404 instead of Serve's plain text."""

    async def __call__(self, request: HTTPRequest) -> JSONResponse:
        name = request.url.path.rstrip("/").rpartition("/models")[2].strip("/").split("/")[0]
        if not name:
            return JSONResponse({"error": "POST to /models/NAME; `orch endpoints list`"}, 404)
        return JSONResponse(
            {"error": f"no model named {name!r} is served here", "field": "model"}, 404
        )


def model_app(name: str, options: ServeOptions | dict[str, Any], model: dict[str, Any]) -> Any:
    """The bound application for one model (``options`` may come as a plain dict, as it does
    when the app is built by import path). The deployment's code version is a hash of its
    options and of the serving code, so a redeploy that changes only ``model`` is an
    in-place update (and one after an upgrade of this code restarts the replicas)."""
    if not isinstance(options, ServeOptions):
        options = ServeOptions.model_validate(options)
    digest = hashlib.sha256(json.dumps([name, options.model_dump()], sort_keys=True).encode())
    for source in SERVING_CODE:
        digest.update(source.read_bytes())
    version = digest.hexdigest()[:16]
    scaling: dict[str, Any] = (
        {
            "autoscaling_config": {
                "min_replicas": options.autoscale[0],
                "max_replicas": options.autoscale[1],
                "target_ongoing_requests": max(1, options.max_batch_size // 2),
            }
        }
        if options.autoscale
        else {"num_replicas": options.replicas}
    )
    deployment = ModelServer.options(
        user_config=model,
        max_ongoing_requests=options.max_ongoing_requests,
        logging_config=SERVE_LOGGING,
        ray_actor_options={
            "num_cpus": options.cpus_per_replica,
            "num_gpus": options.gpus_per_replica,
        },
        **scaling,
    )
    # Ray 2.60 refuses `version=` from users and gives every `serve.run` a random code
    # version, which restarts all replicas on a promotion. A stable version keeps the
    # promotion a user_config change (replicas reconfigure in place).
    deployment = deployment.options(version=version, _internal=True)
    return deployment.bind(name, options.model_dump())


def index_app() -> Any:
    """The bound application that answers 404s under /models."""
    return ModelsIndex.bind()
