"""The scheduler's ``Backend`` (``orchestrator.scheduler.service``) on the Ray Jobs API."""

from __future__ import annotations

from typing import Any


class RayBackend:
    """``orchestrator.scheduler.service.Backend`` on a live cluster."""

    def __init__(self, dashboard_url: str) -> None:
        from ray.job_submission import JobSubmissionClient

        self.client = JobSubmissionClient(dashboard_url)

    def nodes(self) -> list[dict[str, float]]:
        import ray

        return [
            {k: float(v) for k, v in n["Resources"].items() if k in ("CPU", "GPU", "memory")}
            for n in ray.nodes()
            if n.get("Alive")
        ]

    def job_statuses(self) -> dict[str, tuple[str, str]]:
        return {
            j.submission_id: (j.status.value, j.message or "")
            for j in self.client.list_jobs()
            if j.submission_id
        }

    def submit(
        self, submission_id: str, entrypoint: str, resources: dict[str, float], env: dict[str, str]
    ) -> None:
        kwargs: dict[str, Any] = {
            "entrypoint_num_cpus": resources.get("CPU", 0),
            "entrypoint_num_gpus": resources.get("GPU", 0),
        }
        if resources.get("memory"):
            kwargs["entrypoint_memory"] = int(resources["memory"])
        self.client.submit_job(
            entrypoint=entrypoint,
            submission_id=submission_id,
            runtime_env={"env_vars": env},
            **kwargs,
        )

    def stop(self, submission_id: str) -> None:
        self.client.stop_job(submission_id)

    def node_groups(self) -> list[dict[str, Any]]:
        """The autoscaler's node types as published in the GCS (autoscaler v2, KubeRay);
        none for a fixed cluster or autoscaler v1 (then: setting ``autoscaling_config``)."""
        import ray

        try:
            config = ray._private.state.state.get_cluster_config()
        except Exception:  # noqa: BLE001 - no view of the autoscaler: plan with live nodes
            return []
        if config is None:
            return []
        return [
            {"name": g.name, "resources": dict(g.resources), "max": g.max_count}  # -1: no limit
            for g in config.node_group_configs
            if g.max_count != 0
        ]

    def request_resources(self, bundles: list[dict[str, float]]) -> None:
        """Ray's autoscaler scales the cluster until these bundles fit (an empty list
        withdraws the last request)."""
        from ray.autoscaler.sdk import request_resources

        request_resources(bundles=bundles)

    def log_tail(self, submission_id: str, lines: int = 20) -> str:
        try:
            return "\n".join(self.client.get_job_logs(submission_id).splitlines()[-lines:])
        except Exception:  # noqa: BLE001 - logs are a courtesy in an error message
            return ""
