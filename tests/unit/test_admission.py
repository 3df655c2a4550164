"""Queue admission: priority then FIFO, whole gangs, and a reason for every waiting job."""

from __future__ import annotations

from orchestrator.scheduler.admission import Request, plan

NODE = {"CPU": 2.0, "GPU": 0.0, "memory": 16 * 2**30}


def req(job_id: int, cpus: float, priority: int = 0, workers: int = 1) -> Request:
    return Request(job_id, priority, tuple({"CPU": cpus} for _ in range(workers)))


def test_fifo_within_a_priority_until_the_cluster_is_full() -> None:
    decision = plan([req(3, 1), req(1, 1), req(2, 1)], [NODE], in_use={})
    assert decision.admitted == [1, 2]
    assert "waiting for resources: asks for 1 CPU, free now 0 CPU" in decision.waiting[3]


def test_higher_priority_goes_first() -> None:
    decision = plan([req(1, 2), req(2, 2, priority=5)], [NODE], in_use={})
    assert decision.admitted == [2]
    assert 1 in decision.waiting


def test_running_jobs_count_against_free_resources() -> None:
    decision = plan([req(1, 1.5)], [NODE], in_use={"CPU": 1.0})
    assert decision.admitted == []
    assert "free now 1 CPU" in decision.waiting[1]


def test_a_blocked_job_is_not_overtaken_by_smaller_ones() -> None:
    decision = plan([req(1, 2), req(2, 0.5)], [NODE], in_use={"CPU": 1.0})
    assert decision.admitted == []
    assert decision.waiting[2].startswith("queued behind job 1")


def test_a_job_that_can_never_fit_blocks_nobody() -> None:
    decision = plan([req(1, 64), req(2, 1)], [NODE], in_use={})
    assert decision.admitted == [2]
    assert "can never start on this cluster" in decision.waiting[1]
    assert "asks for 64 CPU but the whole cluster has 2 CPU" in decision.waiting[1]


def test_gang_needs_every_worker_to_fit_some_node() -> None:
    nodes = [NODE, NODE]  # 4 CPUs in all, 2 per node
    assert plan([req(1, 1, workers=4)], nodes, {}).admitted == [1]
    too_big = plan([req(2, 3)], nodes, {})
    assert "one worker asks for 3 CPU but the largest node has 2 CPU" in too_big.waiting[2]


def test_gpu_jobs_wait_on_a_cpu_cluster_with_a_reason() -> None:
    gpu_job = Request(1, 0, ({"CPU": 1, "GPU": 1},))
    assert "1 GPU" in plan([gpu_job], [NODE], {}).waiting[1]


def test_no_alive_nodes() -> None:
    assert "no alive nodes" in plan([req(1, 1)], [], {}).waiting[1]
