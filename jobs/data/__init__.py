"""The data layer every job reads through.

Files on disk (no Ray, no torch):

- ``jobs.data.readers``: which files a spec names, their format, their columns and rows as
  Ray Data parses them, UTF-8 checks, content fingerprints.
- ``jobs.data.corpus``: the tokenizer job's corpus, streamed text by text.
- ``jobs.data.sentences``: the conll / jsonl parser of tagged sentences, the tag checks, and
  the driver's one pass that checks and counts a split's sentences.

A training job's input pipelines:

- ``jobs.data.pipeline``: ``prepare``, the one sequence of steps for every kind of data:
  each split's files resolved and checked once, rows and labels counted, streaming or in
  memory chosen, the splits tokenised.
- ``jobs.data.files``: a split's files resolved and checked once (``SplitFiles``).
- ``jobs.data.split``: the train and eval sides, and the split by fraction by content hash.
- ``jobs.data.tabular``: classification and masked-LM rows: label checks, the tokenizer UDF.
- ``jobs.data.rows``: their column roles, and their rows read in the driver (counted, or held
  for an in-memory pipeline).
- ``jobs.data.tagged``: token classification: tagged sentences read by Ray tasks or the
  driver, tags aligned to sub-tokens by the tokenizer UDF.
- ``jobs.data.streaming``: Ray Data reads and the pool of tokenizer actors, on fractions of
  a CPU.
- ``jobs.data.in_memory``: a split tokenised in the driver and held as ``TokenizedRows``.
- ``jobs.data.tokenizer_core``: the tokenizer's Rust core that every tokenizer UDF loads.
- ``jobs.data.collate``: batches in the training workers: padding per batch, masking for MLM,
  labels per token padded with -100, length-grouped batches.

Importing the package imports none of them (nor Ray, torch or transformers).
"""
