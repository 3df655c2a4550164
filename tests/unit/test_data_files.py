"""Reading what the driver needs from dataset files without Ray (column names), and where a
single-worker job's next attempt resumes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.data.readers import header_columns
from jobs.errors import JobInputError
from jobs.training import COMPLETE, resume_point


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
