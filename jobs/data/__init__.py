"""The data layer every job reads through.

- ``jobs.data.readers``: dataset files on disk: formats, UTF-8 checks, fingerprints, and the
  tokenizer corpus streamed line by line (no Ray, no torch).
- ``jobs.data.pipeline``: Ray Data reads, the split by fraction, label checks and streaming
  tokenisation; ``prepare`` builds a training job's train/eval pipelines.
- ``jobs.data.collate``: batches in the training workers: padding per batch, masking for MLM,
  length-grouped batches.

Importing the package imports none of them (nor Ray, torch or transformers).
"""
