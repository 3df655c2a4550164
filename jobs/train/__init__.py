"""The Ray Train engine that pretraining and fine-tuning share.

- ``plan``: the run's plan and schedule, plain data (imports neither side).
- ``fit``: the driver side: the ``TorchTrainer``, then the best model registered.
- ``worker``: what every worker runs: the Hugging Face ``Trainer`` on its shard, DDP or FSDP2.
- ``callbacks``: ``Trainer`` callbacks in the workers: complete checkpoints, time budget,
  live metrics.
- ``reports``: workers -> driver: metric rows and restarts, over a queue.
"""
