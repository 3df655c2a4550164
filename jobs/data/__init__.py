"""The data layer every job reads through.

- ``jobs.data.readers``: dataset files on disk: formats, UTF-8 checks, fingerprints, the
  tokenizer corpus streamed line by line, and the conll / jsonl parser of tagged sentences
  with its checks (no Ray, no torch).
- ``jobs.data.pipeline``: Ray Data reads, the split by fraction, label checks and streaming
  tokenisation (tags aligned to sub-tokens for token classification); ``prepare`` builds a
  training job's train/eval pipelines.
- ``jobs.data.collate``: batches in the training workers: padding per batch, masking for MLM,
  labels per token padded with -100, length-grouped batches.

Importing the package imports none of them (nor Ray, torch or transformers).
"""
