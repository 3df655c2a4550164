"""A job driver's log, whole or followed to its end (through the Ray Jobs API)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from orchestrator.ray_client.cluster_info import ClusterInfo
from orchestrator.ray_client.connection import jobs_client


def job_logs(info: ClusterInfo, ray_job_id: str) -> str:
    """The driver's log so far."""
    return str(jobs_client(info).get_job_logs(ray_job_id))


def follow_logs(info: ClusterInfo, ray_job_id: str) -> Iterator[str]:
    """Stream a driver's log until it ends."""
    client = jobs_client(info)
    loop = asyncio.new_event_loop()
    agen = client.tail_job_logs(ray_job_id)
    try:
        while True:
            try:
                yield loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(agen.aclose())
        loop.close()
