"""The control plane's door to Ray (and Ray Serve), one concern per module.

- ``cluster_info``: ``ClusterInfo`` (how to reach a cluster) and ``reachable``.
- ``local``: the local cluster's processes: ports, token, temp dir, start and stop of the head
  (our own processes only: ``ray stop`` would stop every Ray cluster on the machine).
- ``connection``: which cluster to use, ``ray.init`` with token auth, the Jobs API client,
  the nodes and their free resources.
- ``scheduler_host``: the detached actor that runs the scheduler on the head node.
- ``jobs_api``: ``RayBackend``, the scheduler's ``Backend`` on the Ray Jobs API.
- ``serve``: Ray Serve: start it, deploy an application (built on the cluster), delete, status.
- ``logs``: a job driver's log, whole or followed.
- ``metrics``: where each node's metrics agent serves Ray's metrics, and the endpoints' ones
  for the API's ``/metrics``.

Importing this package imports no Ray: each module imports it inside the functions that need
it, so ``orch --help`` stays fast.
"""

from pathlib import Path

# The folder that holds ``orchestrator`` and ``jobs``: on the PYTHONPATH of what we start on
# the cluster (the local head, the scheduler actor, the task that builds Serve applications).
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
