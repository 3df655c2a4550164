"""Which predictor answers each endpoint task, and ``load_predictor`` to load one."""

from __future__ import annotations

from typing import Any

from jobs.serving.direct import DIRECT_TASKS, DirectPredictor
from jobs.serving.model import Predictor
from jobs.serving.pipelines import PIPELINE_TASKS, PipelinePredictor

PREDICTORS: dict[str, type[Predictor]] = {
    **dict.fromkeys(DIRECT_TASKS, DirectPredictor),
    **dict.fromkeys(PIPELINE_TASKS, PipelinePredictor),
}


def load_predictor(path: str, task: str, *args: Any, **options: Any) -> Predictor:
    """The model version in ``path`` loaded to answer ``task``; the other arguments are
    ``Predictor``'s (max_batch_tokens, device, quantize, dtype)."""
    if task not in PREDICTORS:
        raise ValueError(f"no predictor for task {task!r}; known: {', '.join(PREDICTORS)}")
    return PREDICTORS[task](path, task, *args, **options)
