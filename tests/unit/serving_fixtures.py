"""Fixtures of the pipeline-task tests: tiny models, their predictors and transformers'
reference pipelines. Test modules that use them name this module in ``pytest_plugins``
(pytest loads it, so it is never imported directly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_tiny_model
from tests.unit.serving_helpers import NER_LABELS, NLI_LABELS, WIDE


@pytest.fixture(scope="session")
def task_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny token-classification, question-answering and NLI models (saved once: no test
    writes to them)."""
    root = tmp_path_factory.mktemp("tasks")
    return {
        "ner": make_tiny_model(root / "ner", "token-classification", labels=NER_LABELS, **WIDE),
        "qa": make_tiny_model(root / "qa", "question-answering", **WIDE),
        "nli": make_tiny_model(root / "nli", "text-classification", labels=NLI_LABELS, **WIDE),
    }


@pytest.fixture(scope="module")
def ner(task_models: dict[str, Path]) -> Any:
    from jobs.serving.predictors import load_predictor

    return load_predictor(str(task_models["ner"]), "token-classification", max_batch_tokens=64)


@pytest.fixture(scope="module")
def qa(task_models: dict[str, Path]) -> Any:
    from jobs.serving.predictors import load_predictor

    return load_predictor(str(task_models["qa"]), "question-answering", max_batch_tokens=128)


@pytest.fixture(scope="module")
def nli(task_models: dict[str, Path]) -> Any:
    from jobs.serving.predictors import load_predictor

    return load_predictor(str(task_models["nli"]), "zero-shot-classification", max_batch_tokens=64)


@pytest.fixture(scope="module")
def reference(task_models: dict[str, Path]) -> dict[str, Any]:
    """transformers' own pipelines, loaded from the folders (batch size 1)."""
    import transformers

    return {
        "token-classification": transformers.pipeline(
            "token-classification", model=str(task_models["ner"])
        ),
        "zero-shot-classification": transformers.pipeline(
            "zero-shot-classification", model=str(task_models["nli"])
        ),
        "feature-extraction": transformers.pipeline(
            "feature-extraction", model=str(task_models["ner"])
        ),
    }
