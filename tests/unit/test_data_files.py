"""Reading what the driver needs from dataset files without Ray (column names), and where a
single-worker job's next attempt resumes."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.data.readers import header_columns
from jobs.errors import JobInputError
from jobs.train.plan import COMPLETE, resume_point


def test_header_columns_of_every_tabular_format(tmp_path: Path) -> None:
    tsv = tmp_path / "a.tsv"
    tsv.write_text("sentence\tlabel\nit's \"fine\t1\n")  # bare quotes: tsv is read unquoted
    csv = tmp_path / "a.csv"
    csv.write_text('"text, quoted",label\n"a, b",0\n')
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"text": "a"}\n{"text": "b", "label": 1}\n')  # label: not in row 1
    parquet = tmp_path / "a.parquet"
    pq.write_table(pa.table({"premise": ["a"], "hypothesis": ["b"]}), parquet)
    assert header_columns(str(tsv), "tsv") == ["sentence", "label"]
    assert header_columns(str(csv), "csv") == ["text, quoted", "label"]
    assert header_columns(str(jsonl), "jsonl") == ["text", "label"]
    assert header_columns(str(parquet), "parquet") == ["premise", "hypothesis"]
    assert header_columns(str(tsv), "text") == ["text"]


def test_header_columns_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(JobInputError, match=r"could not read .*bad.jsonl"):
        header_columns(str(bad), "jsonl")
    broken = tmp_path / "broken.parquet"
    broken.write_text("PAR1 not really")
    with pytest.raises(JobInputError, match=r"could not read .*broken.parquet"):
        header_columns(str(broken), "parquet")


def test_resume_point_is_the_latest_complete_checkpoint_of_any_attempt(tmp_path: Path) -> None:
    assert resume_point(tmp_path) is None
    for attempt, step, complete in ((1, 10, True), (1, 20, True), (2, 30, True), (2, 40, False)):
        folder = tmp_path / f"hf-{attempt}" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if complete:
            (folder / COMPLETE).touch()
    # step 40 was being written when the driver died: not complete, not resumed from
    assert resume_point(tmp_path) == str(tmp_path / "hf-2" / "checkpoint-30")
    (tmp_path / "hf-3" / "checkpoint-tmp").mkdir(parents=True)
    (tmp_path / "hf-3" / "checkpoint-tmp" / COMPLETE).touch()  # not a step: ignored
    assert resume_point(tmp_path) == str(tmp_path / "hf-2" / "checkpoint-30")


def test_tally_counts_rows_and_labels_as_the_pipeline_limits_them(tmp_path: Path) -> None:
    from jobs.data.files import check_files
    from jobs.data.rows import tally
    from jobs.data.split import SplitRule
    from orchestrator.specs.training import Files

    first, second = tmp_path / "a.tsv", tmp_path / "b.tsv"
    first.write_text("sentence\tlabel\n" + "".join(f"s{i}\t{i % 2}\n" for i in range(5000)))
    second.write_text("sentence\tlabel\n" + "".join(f"t{i}\t{2}\n" for i in range(10)))
    files = check_files(Files(files=[str(first), str(second)]), "train")
    roles = {"text": "sentence", "label": "label"}
    [(rows, labels)] = tally(files, roles, None)
    assert (rows, dict(labels)) == (5010, {0: 2500, 1: 2500, 2: 10})
    [(rows, labels)] = tally(files, roles, 4999)  # stops inside the first file
    assert (rows, dict(labels)) == (4999, {0: 2500, 1: 2499})
    train, held = tally(files, roles, None, SplitRule(0.25, 7))
    assert train.rows + held.rows == 5010 and 1000 < held.rows < 1500
    text = tmp_path / "c.txt"
    text.write_text("one\n\n  \ntwo\u2028three\r\nfour")  # blank lines dropped, as read_text
    [(rows, labels)] = tally(check_files(Files(files=[str(text)]), "train"), {"text": "text"}, None)
    assert (rows, dict(labels)) == (4, {})


def test_tally_errors_name_the_file(tmp_path: Path) -> None:
    from jobs.data.files import SplitFiles
    from jobs.data.readers import fingerprint_files
    from jobs.data.rows import tally

    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\na,1\nb,2,extra\n")
    files = SplitFiles([str(bad)], "csv", fingerprint_files([str(bad)]), ["text", "label"])
    with pytest.raises(JobInputError, match=r"could not read .*bad.csv"):
        tally(files, {"text": "text", "label": "label"}, None)


def test_started_early_runs_the_first_pass_ahead_and_later_passes_as_usual() -> None:
    import threading

    from jobs.train.worker import StartedEarly

    produced = threading.Event()
    closed = []

    class Source:
        def __iter__(self):  # noqa: ANN204
            try:
                for i in range(100):
                    produced.set()
                    yield i
            finally:
                closed.append(True)

    early = StartedEarly(Source())
    assert produced.wait(10), "the first pass did not start before anyone iterated"
    assert list(early) == list(range(100))
    assert list(early) == list(range(100))  # a second epoch
    assert closed == [True, True]

    abandoned = StartedEarly(Source())
    first = iter(abandoned)
    assert [next(first) for _ in range(3)] == [0, 1, 2]
    first.close()  # max_steps reached: the Trainer drops its dataloader
    deadline = time.monotonic() + 10
    while len(closed) < 3:
        assert time.monotonic() < deadline, "the abandoned pass never closed its source"
        time.sleep(0.05)

    def broken():  # noqa: ANN202
        yield 1
        raise ValueError("a bad row")

    failing = StartedEarly(broken())
    with pytest.raises(ValueError, match="a bad row"):
        list(failing)


def test_auto_holds_a_small_one_worker_dataset_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``data.pipeline: auto`` streams through Ray Data for several workers or large files
    (their size: what the split's files were fingerprinted as)."""
    from jobs.data import pipeline
    from jobs.data.files import check_files
    from orchestrator.specs.training import DataSpec

    (tmp_path / "a.txt").write_text("a line\n" * 1000)  # 7,000 bytes
    auto = DataSpec.model_validate({"train": {"files": [str(tmp_path / "a.txt")]}})
    size = check_files(auto.train, "train").fingerprint.size_bytes
    assert size == 7000
    assert pipeline.in_memory(auto.pipeline, 1, size) and not pipeline.in_memory("auto", 2, size)
    assert not pipeline.in_memory("streaming", 1, size)
    monkeypatch.setattr(pipeline, "IN_MEMORY_MAX_BYTES", 6999)
    assert not pipeline.in_memory("auto", 1, size)
    assert pipeline.in_memory("in-memory", 1, size)


def test_rows_in_memory_batch_like_a_ray_data_shard() -> None:
    """In row order, the last batch short, and through the collate function for torch."""
    import numpy as np

    from jobs.data.in_memory import TokenizedRows, objects

    ids = objects([np.arange(n, dtype=np.int32) for n in range(1, 8)])
    rows = TokenizedRows.concat(
        [
            {"input_ids": ids[:4], "labels": np.arange(4)},
            {"input_ids": ids[4:], "labels": [4, 5, 6]},
        ]
    )
    assert len(rows) == 7 and rows.columns["input_ids"].dtype == object
    batches = list(rows.iter_batches(batch_size=3, batch_format="numpy"))
    assert [b["labels"].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [len(x) for x in batches[1]["input_ids"]] == [4, 5, 6]
    sizes = rows.iter_torch_batches(batch_size=5, collate_fn=lambda b: len(b["labels"]))
    assert list(sizes) == [5, 2]
    with pytest.raises(ValueError, match="different lengths"):
        TokenizedRows({"input_ids": ids, "labels": np.arange(3)})
    assert objects([1, 2]).dtype.kind == "i" and objects(["a", 1]).dtype == object


def test_length_grouped_batches_are_seeded_per_pass() -> None:
    """Batches of similar length, in an order that the seed and the pass decide: a run is
    reproducible (and a resumed one skips what the interrupted one saw)."""
    import numpy as np

    from jobs.data.collate import LengthGroupedBatches
    from jobs.data.in_memory import TokenizedRows, objects

    rng = np.random.default_rng(0)
    rows = TokenizedRows(
        {
            "input_ids": objects([np.ones(n, dtype=np.int32) for n in rng.integers(1, 60, 400)]),
            "labels": np.arange(400),
        }
    )

    def passes(seed: int) -> list[list[list[int]]]:
        batches = LengthGroupedBatches(rows, 8, lambda b: b["labels"].tolist(), seed)
        return [list(batches), list(batches)]

    first, second = passes(42)
    assert passes(42) == [first, second] and first != second and passes(7)[0] != first
    assert sorted(i for batch in first for i in batch) == list(range(400))
    lengths = [len(rows.columns["input_ids"][i]) for i in first[0]]
    assert max(lengths) - min(lengths) <= 3  # similar lengths within a batch
