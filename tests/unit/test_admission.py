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


# --- a cluster that may grow: the autoscaler's node types --------------------------------


def test_a_gang_too_large_for_the_live_nodes_asks_for_the_nodes_it_fits_on() -> None:
    gpu_node = {"CPU": 48.0, "GPU": 4.0}
    gang = ({"CPU": 0.0}, {"CPU": 0.5}, *({"CPU": 1.0, "GPU": 1.0} for _ in range(4)))
    queue = [Request(1, 0, gang), req(2, 1)]
    decision = plan(queue, [NODE], in_use={}, scalable=[gpu_node] * 8)
    assert decision.scale_up == {1: list(gang[1:])}  # the empty driver bundle is not asked for
    assert decision.waiting[1].startswith("waiting for nodes: asked the autoscaler for 4.5 CPU")
    assert decision.admitted == [2]  # it blocks nobody while nodes start


def test_a_gang_too_large_even_for_the_largest_cluster_asks_for_nothing() -> None:
    decision = plan([req(1, 1.0, workers=200)], [NODE], in_use={}, scalable=[{"CPU": 48.0}] * 2)
    assert decision.scale_up == {}
    assert "can never start on this cluster" in decision.waiting[1]
    assert "even at its largest it has 98 CPU" in decision.waiting[1]


def test_the_shipped_gpu_cluster_config_scales_from_zero_gpu_nodes_for_a_gpu_job() -> None:
    """cluster/ray-cluster.gpu.yaml (min_workers: 0) through the scheduler's path: a 4-GPU
    fine-tuning job on the CPU head alone waits for nodes and asks for one 4-GPU node."""
    from orchestrator.scheduler.capacity import read_launcher_config, scalable_nodes
    from orchestrator.specs import parse_spec
    from tests.conftest import REPO

    groups = read_launcher_config(REPO / "cluster" / "ray-cluster.gpu.yaml")
    assert groups == [{"name": "gpu-4x", "resources": {"CPU": 48.0, "GPU": 4.0}, "max": 8}]
    head = {"CPU": 8.0, "GPU": 0.0}
    spec = parse_spec(
        {
            "kind": "finetune",
            "name": "gpu-job",
            "base": {"path": str(REPO)},
            "data": {"train": {"files": [str(REPO / "jobs/sample_data/sst2/train.tsv")]}},
            "scaling": {"num_workers": 4, "use_gpu": True},
            "train": {"precision": "bf16"},
        },
        check_files=False,
    )
    scalable = scalable_nodes(groups, [head])
    assert len(scalable) == 8
    decision = plan([Request(7, 0, tuple(spec.gang()))], [head], {}, scalable)
    assert [b.get("GPU", 0) for b in decision.scale_up[7]] == [0, 1, 1, 1, 1]
    assert "4 GPU" in decision.waiting[7]
    # once one node of that type is live, the autoscaler may add 7 more, and the job fits
    assert len(scalable_nodes(groups, [head, {"CPU": 48.0, "GPU": 4.0}])) == 7
    assert plan([Request(7, 0, tuple(spec.gang()))], [head, {"CPU": 48.0, "GPU": 4.0}], {}).admitted


def test_launcher_config_errors_name_the_file_and_the_field(tmp_path) -> None:  # noqa: ANN001
    import pytest

    from orchestrator.scheduler.capacity import read_launcher_config

    bad = tmp_path / "c.yaml"
    bad.write_text("available_node_types:\n  w:\n    max_workers: 2\n")
    with pytest.raises(ValueError, match=r"c.yaml: available_node_types.w.resources is missing"):
        read_launcher_config(bad)
    bad.write_text("[1, 2\n")
    with pytest.raises(ValueError, match=r"autoscaling_config .*c.yaml"):
        read_launcher_config(bad)


def test_live_nodes_of_a_type_count_against_its_maximum() -> None:
    from orchestrator.scheduler.capacity import scalable_nodes

    groups = [
        {"name": "w", "resources": {"CPU": 2}, "max": 2},
        {"name": "g", "resources": {"CPU": 8, "GPU": 1}, "max": -1},
    ]
    live = [{"CPU": 1.0, "memory": 8e9}, {"CPU": 2.0, "memory": 16e9}]  # a head, one "w"
    scalable = scalable_nodes(groups, live)
    assert scalable.count({"CPU": 2.0}) == 1 and scalable.count({"CPU": 8.0, "GPU": 1.0}) == 100
