"""Token classification (NER) without a Ray cluster: the spec, the conll / jsonl parser and
the driver's checks, tag alignment on MiniLM's tokenizer, padding, and the seqeval metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jobs.data.sentences import (
    Sentence,
    default_tag_names,
    parse_sentences,
    read_sentences,
    scan_sentences,
    tag_ids,
)
from jobs.errors import JobInputError
from orchestrator.errors import SpecError
from orchestrator.specs import parse_spec
from orchestrator.specs.common import FORMAT_BY_SUFFIX, detect_format, metrics_not_of_task
from tests.conftest import SHARED_DATA, WNUT_TAGS, minilm_path, shared_data

# Two sentences separated by a line holding a single tab (as in WNUT-17's train file), a
# -DOCSTART- line, a whitespace-only separator, and a space-separated last sentence.
CONLL = (
    "-DOCSTART-\tO\n"
    "\n"
    "Empire\tB-location\n"
    "State\tI-location\n"
    "is\tO\n"
    "\t\n"
    "@paulwalk\tO\n"
    "loves\tO\n"
    "Paris\tB-location\n"
    "   \n"
    "Bob   B-person\n"
    "ran O\n"
)


# --- the spec -------------------------------------------------------------------------------


def finetune_spec(corpus: Path, **extra: object) -> dict:
    return {
        "kind": "finetune",
        "name": "ner",
        "base": {"model": "minilm@production"},
        "data": {"train": {"files": [str(corpus)]}},
        **extra,
    }


def problems(exc: pytest.ExceptionInfo[SpecError]) -> str:
    return "\n".join(exc.value.problems) or exc.value.message


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "train.conll"
    path.write_text(CONLL)
    return path


def test_token_classification_defaults_to_seqeval_metrics_and_best_f1(corpus: Path) -> None:
    spec = parse_spec(finetune_spec(corpus, task="token-classification"))
    assert spec.task == "token-classification"
    assert spec.metrics == ["f1", "precision", "recall", "accuracy"]
    assert spec.best_metric == "f1"
    assert spec.data.columns.tokens == "tokens" and spec.data.columns.tags == "tags"
    # what the driver re-validates (the dumped spec) keeps them
    again = parse_spec(spec.model_dump(mode="json"), check_files=False)
    assert again.metrics == spec.metrics and again.best_metric == "f1"
    chosen = parse_spec(
        finetune_spec(corpus, task="token-classification", metrics=["f1"], best_metric="loss")
    )
    assert chosen.metrics == ["f1"] and chosen.best_metric == "loss"


def test_text_classification_keeps_its_defaults(corpus: Path) -> None:
    tsv = corpus.with_suffix(".tsv")
    tsv.write_text("text\tlabel\nhi\t1\n")
    spec = parse_spec(finetune_spec(tsv))
    assert spec.task == "text-classification"
    assert spec.metrics == ["accuracy", "f1"] and spec.best_metric == "accuracy"


def test_metrics_are_checked_per_task_naming_the_field(corpus: Path) -> None:
    with pytest.raises(SpecError) as exc:
        parse_spec(
            finetune_spec(
                corpus, task="token-classification", metrics=["f1", "matthews_correlation"]
            )
        )
    assert (
        "metrics: ['matthews_correlation'] is not computed for token-classification; "
        "allowed: ['f1', 'precision', 'recall', 'accuracy']" in problems(exc)
    )
    with pytest.raises(SpecError) as exc:
        parse_spec(finetune_spec(corpus, task="token-classification", metrics=["bleu"]))
    assert "metrics: unknown ['bleu']; known: ['accuracy', 'f1'" in problems(exc)
    with pytest.raises(SpecError, match="best_metric 'f1' must be one of metrics"):
        parse_spec(finetune_spec(corpus, task="token-classification", metrics=["accuracy"]))
    with pytest.raises(SpecError, match="task: Input should be 'text-classification'"):
        parse_spec(finetune_spec(corpus, task="ner"))
    assert metrics_not_of_task("text-classification", ["matthews_correlation"]) is None
    assert metrics_not_of_task("fill-mask", ["accuracy"]) is None


def test_formats_must_fit_the_task(corpus: Path) -> None:
    with pytest.raises(SpecError) as exc:
        parse_spec(
            finetune_spec(
                corpus,
                task="token-classification",
                data={"train": {"files": [str(corpus)], "format": "tsv"}},
            )
        )
    assert "data.train.format tsv: token-classification reads conll or jsonl" in problems(exc)
    with pytest.raises(SpecError) as exc:
        parse_spec(
            finetune_spec(corpus, data={"train": {"files": [str(corpus)], "format": "conll"}})
        )
    assert "data.train.format conll holds a tag per word: set task: token-classification" in (
        problems(exc)
    )
    assert FORMAT_BY_SUFFIX[".conll"] == "conll" and detect_format(str(corpus), "auto") == "conll"


def test_evaluate_metrics_default_to_the_models_task(corpus: Path) -> None:
    spec = parse_spec(
        {
            "kind": "evaluate",
            "name": "e",
            "model": "ner@production",
            "data": {"files": [str(corpus)]},
        }
    )
    assert spec.metrics is None  # the job picks the model task's metrics
    with pytest.raises(SpecError, match="metrics: unknown"):
        parse_spec(
            {
                "kind": "evaluate",
                "name": "e",
                "model": "ner",
                "data": {"files": [str(corpus)]},
                "metrics": ["bleu"],
            }
        )


# --- the parser -----------------------------------------------------------------------------


def test_conll_sentences_tab_only_separators_docstart_and_spaces() -> None:
    sentences = list(parse_sentences(CONLL.splitlines(keepends=True), "conll", "x.conll"))
    assert sentences == [
        Sentence(3, ["Empire", "State", "is"], ["B-location", "I-location", "O"]),
        Sentence(7, ["@paulwalk", "loves", "Paris"], ["O", "O", "B-location"]),
        Sentence(11, ["Bob", "ran"], ["B-person", "O"]),
    ]
    crlf = CONLL.replace("\n", "\r\n").splitlines(keepends=True)
    assert list(parse_sentences(crlf, "conll", "x.conll")) == sentences


def test_conll_line_without_a_tag_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.conll"
    path.write_text("Empire\tB-location\nState\n")
    with pytest.raises(JobInputError, match=f"{path} line 2: no tag after the token 'State'"):
        list(read_sentences(str(path), "conll"))


def test_jsonl_sentences_with_int_tags_and_named_columns() -> None:
    rows = [
        json.dumps({"words": ["Bob", "ran"], "ner": [1, 0]}),
        "",
        json.dumps({"words": [], "ner": []}),  # an empty sentence is skipped
        json.dumps({"words": ["in", "Paris"], "ner": ["O", "B-location"]}),
    ]
    sentences = list(parse_sentences(rows, "jsonl", "x.jsonl", "words", "ner"))
    assert sentences == [
        Sentence(1, ["Bob", "ran"], [1, 0]),
        Sentence(4, ["in", "Paris"], ["O", "B-location"]),
    ]
    assert tag_ids(sentences[1].tags, {"O": 0, "B-location": 1}) == [0, 1]
    assert tag_ids(sentences[0].tags, {}) == [1, 0]


def test_jsonl_problems_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"tokens": ["a"], "tags": ["O"]})
        + "\n"
        + json.dumps({"tokens": ["a", "b"], "tags": ["O"]})
        + "\n"
    )
    with pytest.raises(JobInputError, match=f"{path} line 2: 2 tokens but 1 tags"):
        list(read_sentences(str(path), "jsonl"))
    with pytest.raises(JobInputError, match="x.jsonl line 1: no column 'tokens' and 'tags'"):
        list(parse_sentences(['{"text": "a"}'], "jsonl", "x.jsonl"))
    with pytest.raises(JobInputError, match="x.jsonl line 1: 'tags' must be a list of tags"):
        list(parse_sentences(['{"tokens": ["a"], "tags": [true]}'], "jsonl", "x.jsonl"))
    with pytest.raises(JobInputError, match="x.jsonl line 1: not valid JSON"):
        list(parse_sentences(["{"], "jsonl", "x.jsonl"))
    with pytest.raises(JobInputError, match="reads conll or jsonl files, not tsv"):
        parse_sentences([], "tsv", "x.tsv")


# --- the driver's checks --------------------------------------------------------------------


def test_scan_counts_sentences_and_collects_tags(corpus: Path, tmp_path: Path) -> None:
    scan = scan_sentences([str(corpus)], "conll", "data.train")
    assert scan.taken == {str(corpus): 3} and scan.sentences == 3
    assert default_tag_names(scan.tags) == ["O", "B-location", "B-person", "I-location"]
    assert default_tag_names(["B-x", "I-x"]) == ["B-x", "I-x"]
    second = tmp_path / "more.conll"
    second.write_text("a\tO\n\nb\tO\n\nc\tO\n")
    limited = scan_sentences([str(corpus), str(second)], "conll", "data.train", max_rows=4)
    assert limited.taken == {str(corpus): 3, str(second): 1}
    first_only = scan_sentences([str(corpus), str(second)], "conll", "data.train", max_rows=2)
    assert first_only.taken == {str(corpus): 2}
    held = scan_sentences(
        [str(corpus)], "conll", "data.train", held_out=lambda words: "Bob" in words
    )
    assert held.held_out == 1


def test_a_tag_not_in_labels_names_the_key_file_and_line(corpus: Path) -> None:
    labels = ["O", "B-location", "I-location"]
    with pytest.raises(JobInputError) as exc:
        scan_sentences([str(corpus)], "conll", "data.train", labels=labels)
    assert str(exc.value) == (
        f"data.train: {corpus} line 11: tag 'B-person' is not one of labels {labels}"
    )


def test_int_tags_need_labels_and_must_be_in_range(tmp_path: Path) -> None:
    path = tmp_path / "ints.jsonl"
    path.write_text(
        json.dumps({"tokens": ["a", "b"], "tags": [0, 1]})
        + "\n"
        + json.dumps({"tokens": ["c"], "tags": [2]})
        + "\n"
    )
    with pytest.raises(JobInputError, match=f"data.eval: {path} line 1: tag 0 is an integer"):
        scan_sentences([str(path)], "jsonl", "data.eval")
    with pytest.raises(
        JobInputError, match=f"data.eval: {path} line 2: tag 2 is out of range: labels are 0..1"
    ):
        scan_sentences([str(path)], "jsonl", "data.eval", labels=["O", "B-x"])
    scan = scan_sentences([str(path)], "jsonl", "data.eval", labels=["O", "B-x", "I-x"])
    assert scan.sentences == 2


def test_empty_files_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.conll"
    empty.write_text("")
    with pytest.raises(JobInputError, match=f"data.train: {empty} line 1: the file is empty"):
        scan_sentences([str(empty)], "conll", "data.train")
    blank = tmp_path / "blank.conll"
    blank.write_text("-DOCSTART- O\n\t\n\n")
    with pytest.raises(JobInputError, match=f"data.train: {blank}: no sentence in the file"):
        scan_sentences([str(blank)], "conll", "data.train")


def test_the_sentence_rows_ray_parses_match_the_drivers_counts(corpus: Path) -> None:
    from jobs.data.split import SplitRule
    from jobs.data.tagged import _sentence_rows

    label2id = {n: i for i, n in enumerate(["O", "B-location", "B-person", "I-location"])}
    item = {"path": str(corpus), "take": 2}
    rows = list(_sentence_rows(item, "conll", ("tokens", "tags"), label2id, None))
    assert rows == [
        {"tokens": ["Empire", "State", "is"], "tags": [1, 3, 0]},
        {"tokens": ["@paulwalk", "loves", "Paris"], "tags": [0, 0, 1]},
    ]
    rule = SplitRule(0.5, 7, held_out=True)
    scan = scan_sentences([str(corpus)], "conll", "data.train", held_out=rule.holds_out)
    everything = {"path": str(corpus), "take": 3}
    held = list(_sentence_rows(everything, "conll", ("tokens", "tags"), label2id, rule))
    kept = list(
        _sentence_rows(
            everything, "conll", ("tokens", "tags"), label2id, rule._replace(held_out=False)
        )
    )
    assert len(held) == scan.held_out and len(held) + len(kept) == 3


def test_wnut17_files_parse_with_their_13_tags() -> None:
    wnut = shared_data(SHARED_DATA / "wnut17")
    counts = {}
    tags: set[str] = set()
    for split in ("train", "dev", "test"):
        scan = scan_sentences([str(wnut / f"{split}.conll")], "conll", f"data.{split}")
        counts[split] = scan.sentences
        tags |= scan.tags
    assert counts == {"train": 3394, "dev": 1009, "test": 1287}
    assert default_tag_names(tags) == WNUT_TAGS


# --- tokenisation, alignment and padding ----------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> str:
    return str(minilm_path())


def test_a_word_split_into_sub_tokens_gets_its_tag_on_the_first_only(minilm: str) -> None:
    from transformers import AutoTokenizer

    from jobs.data.tagged import TokenizeTagged, align_tags
    from jobs.data.tokenizer_core import tokenizer_core

    assert align_tags([None, 0, 1, 1, 2, None], [5, 6, 7]) == [-100, 5, 6, -100, 7, -100]
    words = ["Discivery", "Channel", "rocks"]
    pieces = AutoTokenizer.from_pretrained(minilm).tokenize("Discivery")
    assert len(pieces) > 1  # the misspelt word is split into several sub-tokens
    tokenize = TokenizeTagged(tokenizer_core(minilm, 64, words=True))
    out = tokenize(
        {"tokens": np.array([np.array(words, dtype=object)], dtype=object), "tags": [[1, 2, 0]]}
    )
    labels = out["labels"][0].tolist()
    assert len(labels) == len(out["input_ids"][0]) == len(pieces) + 4  # [CLS] ... [SEP]
    assert labels == [-100, 1] + [-100] * (len(pieces) - 1) + [2, 0, -100]
    assert out["labels"][0].dtype == np.int64
    short = TokenizeTagged(tokenizer_core(minilm, 4, words=True))(
        {"tokens": [words], "tags": [[1, 2, 0]]}
    )  # truncated: [CLS] + 2 sub-tokens + [SEP]
    assert short["labels"][0].tolist() == [-100, 1, -100, -100]


def test_token_labels_are_padded_with_minus_100(minilm: str) -> None:
    from jobs.data.collate import PadCollate

    collate = PadCollate(minilm, token_labels=True)
    batch = {
        "input_ids": np.array([np.array([101, 7, 8, 102]), np.array([101, 9, 102])], dtype=object),
        "labels": np.array([np.array([-100, 1, 2, -100]), np.array([-100, 0, -100])], dtype=object),
    }
    out = collate(batch)
    assert out["input_ids"].shape == (2, 4) and out["attention_mask"][1].tolist() == [1, 1, 1, 0]
    assert out["labels"].tolist() == [[-100, 1, 2, -100], [-100, 0, -100, -100]]


# --- the seqeval metric ---------------------------------------------------------------------


def test_seqeval_metric_script_on_a_hand_made_example() -> None:
    from jobs.metrics import load_metric

    true = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG", "O", "B-LOC"]]
    # true entities: PER(0-1) LOC(3) ORG(1-2); predicted: PER(0-1) ORG(1) LOC(3 of row 2).
    # Only PER matches exactly: precision 1/3, recall 1/3; tokens right: 5 of 8.
    scores = load_metric("seqeval").compute(predictions=predicted, references=true)
    assert scores["overall_precision"] == pytest.approx(1 / 3)
    assert scores["overall_recall"] == pytest.approx(1 / 3)
    assert scores["overall_f1"] == pytest.approx(1 / 3)
    assert scores["overall_accuracy"] == pytest.approx(5 / 8)
    assert scores["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "number": 1}
    assert scores["LOC"]["number"] == 1 and scores["LOC"]["f1"] == 0.0
    unbalanced = load_metric("seqeval").compute(
        predictions=[["B-PER", "O", "B-LOC"]], references=[["B-PER", "O", "O"]], zero_division=0
    )
    assert unbalanced["overall_precision"] == pytest.approx(0.5)
    assert unbalanced["overall_recall"] == pytest.approx(1.0)
    assert unbalanced["overall_f1"] == pytest.approx(2 / 3)


def test_trainer_metrics_drop_ignored_positions_and_map_ids_to_names() -> None:
    import torch

    from jobs.metrics import argmax_logits, tag_sequences, token_metrics_fn

    names = ["O", "B-PER", "I-PER"]
    logits = torch.tensor([[[0.0, 9, 0], [9, 0, 0], [0, 0, 9], [0, 9, 0]]])
    predictions = argmax_logits((logits,), None)
    assert predictions.tolist() == [[1, 0, 2, 1]]
    labels = np.array([[-100, 1, -100, 0]])  # [CLS], a word, its 2nd sub-token, a word
    assert tag_sequences(predictions.numpy(), labels, names) == ([["O", "B-PER"]], [["B-PER", "O"]])
    compute = token_metrics_fn(["f1", "accuracy"], names)
    # the Trainer pads both with -100; the second sentence's entity is predicted one word late
    padded_predictions = np.array([[1, 1, 2, -100], [1, 0, 1, 0]])
    padded_labels = np.array([[-100, 1, 2, -100], [-100, 1, 0, -100]])
    assert compute((padded_predictions, padded_labels)) == {"f1": 0.5, "accuracy": 0.5}
