"""Control plane of the orchestration service: CLI, registry, scheduler, Ray client.

Nothing here imports torch or transformers; only ``orchestrator.ray_client`` and the
scheduler actor it starts import Ray.
"""

__version__ = "0.1.0"
