"""Spec of the ``tokenizer`` job: train WordPiece, byte-level BPE or Unigram on text files."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from orchestrator.specs.common import FileFormat, JobSpecBase, Resources, StrictModel, resolve_paths

DEFAULT_SPECIAL_TOKENS = {
    "wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "unigram": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "bpe": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
}
BYTE_ALPHABET = 256  # byte-level BPE starts from every byte
ROLE_NAMES = {  # how a special token's name tells its role to transformers
    "pad_token": ("pad",),
    "unk_token": ("unk",),
    "cls_token": ("cls", "s", "bos"),
    "sep_token": ("sep", "/s", "eos"),
    "mask_token": ("mask",),
}


def special_token_roles(tokens: list[str]) -> dict[str, str]:
    """Map transformers' role names (pad_token, unk_token...) to the given special tokens."""
    roles: dict[str, str] = {}
    for token in tokens:
        bare = token.strip("[]<>").lower()
        for role, names in ROLE_NAMES.items():
            if bare in names and role not in roles:
                roles[role] = token
    return roles


class TextCorpus(StrictModel):
    """Text files to read line by line (a stream: the corpus is never loaded whole)."""

    files: list[str] = Field(min_length=1, description="Paths, globs or folders.")
    format: FileFormat = Field("auto", description="auto picks by file suffix.")
    column: str = Field("text", description="Column holding the text (jsonl, csv, tsv).")
    max_lines: int | None = Field(None, gt=0, description="Read at most this many lines.")

    @field_validator("files")
    @classmethod
    def _resolve(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return resolve_paths(value, info)

    @field_validator("format")
    @classmethod
    def _no_parquet(cls, value: str) -> str:
        if value == "parquet":
            raise ValueError("the tokenizer job reads text, jsonl, csv or tsv, not parquet")
        return value


class TokenizerParams(StrictModel):
    """The tokenizer to train: its algorithm, vocabulary and special tokens."""

    algorithm: Literal["wordpiece", "bpe", "unigram"] = Field(
        "wordpiece", description="wordpiece (BERT), bpe (byte-level, RoBERTa) or unigram."
    )
    vocab_size: int = Field(30522, gt=0, description="Target vocabulary size.")
    min_frequency: int = Field(2, ge=1, description="Minimum count of a merge / word piece.")
    lowercase: bool = Field(True, description="Lower-case (and strip accents for WordPiece).")
    special_tokens: list[str] | None = Field(
        None,
        description="Default: [PAD] [UNK] [CLS] [SEP] [MASK] (WordPiece, Unigram), "
        "<s> <pad> </s> <unk> <mask> (BPE).",
    )
    model_max_length: int = Field(512, gt=0, description="Longest sequence models will see.")

    @model_validator(mode="after")
    def _fill_and_check(self) -> TokenizerParams:
        if self.special_tokens is None:
            self.special_tokens = list(DEFAULT_SPECIAL_TOKENS[self.algorithm])
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise ValueError("tokenizer.special_tokens has duplicates")
        if self.algorithm != "bpe" and "unk_token" not in special_token_roles(self.special_tokens):
            raise ValueError(
                f"tokenizer.special_tokens needs an unknown token such as [UNK] "
                f"for {self.algorithm}"
            )
        floor = len(self.special_tokens) + (BYTE_ALPHABET if self.algorithm == "bpe" else 1)
        if self.vocab_size < floor:
            raise ValueError(
                f"tokenizer.vocab_size {self.vocab_size} is too small for {self.algorithm}: "
                f"it needs at least {floor} (special tokens"
                + (" + 256 byte symbols)" if self.algorithm == "bpe" else " + 1)")
            )
        return self


class TokenizerJobSpec(JobSpecBase):
    """Train a tokenizer with the `tokenizers` library and register it as NAME version N."""

    kind: Literal["tokenizer"] = Field("tokenizer", description="The job kind: tokenizer.")
    data: TextCorpus = Field(description="The text the tokenizer learns from, streamed.")
    tokenizer: TokenizerParams = Field(
        default_factory=lambda: TokenizerParams(), description="What to train."
    )
    resources: Resources = Field(
        default_factory=lambda: Resources(), description="What the job's driver reserves."
    )

    def gang(self) -> list[dict[str, float]]:
        return [self.resources.as_ray()]
