"""Queue admission (pure) and the long-lived scheduler loop that reconciles Ray into the
registry. The loop talks to Ray only through ``orchestrator.ray_client``."""
