"""Serving a registered model version on Ray Serve, one application per model.

- ``app``: the Ray Serve deployments (``ModelServer``, ``ModelsIndex``) and the builders
  ``model_app`` and ``index_app`` (the control plane names them by import path).
- ``requests``: HTTP request parsing (the Hugging Face inference JSON) and ``RequestError``.
- ``model``: ``Predictor``, a version loaded for one task (safetensors only) and the
  token-budget forward passes every task shares.
- ``direct``: ``DirectPredictor``, text classification, fill-mask and embeddings from the
  model's outputs.
- ``pipelines``: ``PipelinePredictor``, token classification, question answering,
  zero-shot classification and feature extraction through a transformers pipeline's own
  pre- and post-processing; ``question_answering``: the QA pipeline.
- ``predictors``: ``load_predictor``, the predictor a task takes.

The options an endpoint is served with are ``orchestrator.specs.serving.ServeOptions``. This
package imports nothing at import time: Ray comes with ``app``, torch with the predictors.
"""
