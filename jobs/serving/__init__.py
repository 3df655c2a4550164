"""Serving a registered model version on Ray Serve, one application per model.

- ``app``: the Ray Serve deployments (``ModelServer``, ``ModelsIndex``) and the builders
  ``model_app`` and ``index_app`` (the control plane names them by import path).
- ``requests``: HTTP request parsing (the Hugging Face inference JSON) and ``RequestError``.
- ``inference``: ``Predictor``: load a version (safetensors only), token-budget batches,
  task outputs.

The options an endpoint is served with are ``orchestrator.specs.serving.ServeOptions``. This package
imports nothing at import time: Ray and torch come with ``app`` and ``inference`` only.
"""
