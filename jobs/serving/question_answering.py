"""Extractive question answering as a ``transformers`` ChunkPipeline.

transformers 5 dropped its ``question-answering`` pipeline (it now points to chat models), so
this module keeps one for encoder QA heads (``AutoModelForQuestionAnswering``). It behaves as
transformers 4's pipeline did with a fast tokenizer: the context is cut into windows of
``max_seq_len`` tokens that overlap by ``doc_stride``; the spans of every window are scored
by ``select_starts_ends`` (the span decoder transformers 5 still ships with its document QA
pipeline), aligned to whole words, merged when the same text is found twice, and the best
``top_k`` are answered as ``{"score", "start", "end", "answer"}`` with
``answer == context[start:end]``.

Two deliberate differences from transformers 4, both where it failed: a question longer than
``max_question_len`` tokens is cut to it (transformers 4 did so only with slow tokenizers, and
a long question left no room for the context: the tokenizer panicked), and the default
``doc_stride`` shrinks when a long question leaves less room than it in a window. Tokenizers
that pad on the left keep the question's tokens out of the answers (transformers 4 masked
nothing there).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.pipelines.base import ChunkPipeline
from transformers.pipelines.document_question_answering import select_starts_ends


class QuestionAnsweringPipeline(ChunkPipeline):
    """Answers ``{"question": ..., "context": ...}`` with spans of the context."""

    def _sanitize_parameters(  # type: ignore[override]
        self,
        top_k: int | None = None,
        handle_impossible_answer: bool | None = None,
        max_answer_len: int | None = None,
        doc_stride: int | None = None,
        max_seq_len: int | None = None,
        max_question_len: int | None = None,
        align_to_words: bool | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        given = {
            "doc_stride": doc_stride,
            "max_seq_len": max_seq_len,
            "max_question_len": max_question_len,
        }
        preprocess = {k: v for k, v in given.items() if v is not None}
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1, not {top_k}")
        if max_answer_len is not None and max_answer_len < 1:
            raise ValueError(f"max_answer_len must be at least 1, not {max_answer_len}")
        answer = {
            "top_k": top_k,
            "handle_impossible_answer": handle_impossible_answer,
            "max_answer_len": max_answer_len,
            "align_to_words": align_to_words,
        }
        postprocess = {k: v for k, v in answer.items() if v is not None}
        return preprocess, {}, postprocess

    @property
    def question_first(self) -> bool:
        """Right-padding tokenizers take (question, context), the others (context, question)."""
        return bool(self.tokenizer.padding_side == "right")

    def default_max_seq_len(self) -> int:
        return int(min(self.tokenizer.model_max_length, 384))

    @staticmethod
    def default_doc_stride(max_seq_len: int, room: int) -> int:
        """The windows' overlap when the request names none: half a window, at most 128
        tokens, and less than the room a long question leaves for the context."""
        return min(max_seq_len // 2, 128, room - 1)

    def cut_question(self, question: str, max_question_len: int) -> str:
        """The question, cut after its first ``max_question_len`` tokens."""
        encoded = self.tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        if len(offsets) <= max_question_len:
            return question
        return question[: offsets[max_question_len - 1][1]]

    def context_room(self, question: str, max_seq_len: int) -> int:
        """Context tokens a window holds beside this (already cut) question; ``doc_stride``
        must be smaller (the windows overlap by it)."""
        tokens = len(self.tokenizer(question, add_special_tokens=False)["input_ids"])
        return max_seq_len - tokens - self.tokenizer.num_special_tokens_to_add(pair=True)

    def preprocess(  # type: ignore[override]
        self,
        inputs: dict[str, str],
        doc_stride: int | None = None,
        max_question_len: int = 64,
        max_seq_len: int | None = None,
    ) -> Any:
        context = inputs["context"]
        max_seq_len = max_seq_len or self.default_max_seq_len()
        question = self.cut_question(inputs["question"], max_question_len)
        room = self.context_room(question, max_seq_len)
        if doc_stride is None:
            doc_stride = self.default_doc_stride(max_seq_len, room)
        if room < 1 or not 0 <= doc_stride < room:
            raise ValueError(
                f"a window of {max_seq_len} tokens leaves {room} for the context: "
                f"doc_stride {doc_stride} must be smaller"
            )
        first, second = (question, context) if self.question_first else (context, question)
        encoded = self.tokenizer(
            text=first,
            text_pair=second,
            truncation="only_second" if self.question_first else "only_first",
            max_length=max_seq_len,
            stride=doc_stride,
            return_token_type_ids=True,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        context_sequence = 1 if self.question_first else 0
        windows = len(encoded["input_ids"])
        for window in range(windows):
            ids = encoded["input_ids"][window]
            # 1 where no answer may lie: the question and special tokens; CLS stays open,
            # as models trained with impossible answers point there
            p_mask = [
                int(sequence != context_sequence and token != self.tokenizer.cls_token_id)
                for sequence, token in zip(encoded.sequence_ids(window), ids, strict=True)
            ]
            tensors = {
                name: torch.tensor([encoded[name][window]], dtype=torch.long)
                for name in self.tokenizer.model_input_names
                if name in encoded
            }
            yield {
                "context": context,
                "encoding": encoded[window],
                "is_last": window == windows - 1,
                "p_mask": torch.tensor([p_mask], dtype=torch.long),
                **tensors,
            }

    def _forward(self, inputs: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        names = [name for name in self.tokenizer.model_input_names if name in inputs]
        output = self.model(**{name: inputs[name] for name in names})
        return {"start": output["start_logits"], "end": output["end_logits"], **inputs}

    def postprocess(  # type: ignore[override]
        self,
        model_outputs: list[dict[str, Any]],
        top_k: int = 1,
        handle_impossible_answer: bool = False,
        max_answer_len: int = 15,
        align_to_words: bool = True,
    ) -> Any:
        null_score = 1_000_000.0  # the lowest "no answer" score over the windows
        answers: list[dict[str, Any]] = []
        sequence_index = 1 if self.question_first else 0
        for output in model_outputs:
            attention = output.get("attention_mask")
            # a window's tokens sit after its padding when the batch was padded on the left
            shift = 0
            if self.tokenizer.padding_side == "left":
                shift = int((output["input_ids"] == self.tokenizer.pad_token_id).sum())
            # some candidates vanish when aligned to words: ask for more
            wanted = top_k * 2 + 10 if align_to_words else top_k
            starts, ends, scores, null_score = select_starts_ends(
                output["start"].float().numpy(),
                output["end"].float().numpy(),
                output["p_mask"].numpy(),
                attention.numpy() if attention is not None else None,
                null_score,
                wanted,
                handle_impossible_answer,
                max_answer_len,
            )
            encoding, context = output["encoding"], output["context"]
            for start, end, score in zip(starts, ends, scores, strict=True):
                first, last = _char_span(
                    encoding, int(start) - shift, int(end) - shift, sequence_index, align_to_words
                )
                text = context[first:last]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += float(score)
                else:
                    answers.append(
                        {"score": float(score), "start": first, "end": last, "answer": text}
                    )
        if handle_impossible_answer:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


def _char_span(
    encoding: Any, start: int, end: int, sequence_index: int, align_to_words: bool
) -> tuple[int, int]:
    """The characters of tokens ``start..end``, widened to whole words when asked (and the
    tokenizer knows words)."""
    if align_to_words:
        try:
            first = encoding.word_to_chars(encoding.token_to_word(start), sequence_index)[0]
            last = encoding.word_to_chars(encoding.token_to_word(end), sequence_index)[1]
            return int(first), int(last)
        except Exception:  # noqa: BLE001 - no word for a token: keep to its offsets
            pass
    return int(encoding.offsets[start][0]), int(encoding.offsets[end][1])
