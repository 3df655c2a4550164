"""Job specs: every shipped example validates; bad specs report every problem with its key."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from orchestrator.errors import SpecError
from orchestrator.specs import SPEC_CLASSES, load_spec, parse_spec
from orchestrator.specs.serving import ServeOptions
from orchestrator.specs.tokenizer import TokenizerJobSpec
from tests.conftest import SHARED_DATA, shared_data

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "jobs" / "configs").glob("*.yaml"))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("hello world\nsecond line\n")
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def problems(exc: pytest.ExceptionInfo[SpecError]) -> str:
    return "\n".join(exc.value.problems) or exc.value.message


def test_there_are_example_specs() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_no_example_names_an_interpreter_s_own_path(path: Path) -> None:
    """Examples run on any Python: a base model is a registered version or given by --set."""
    text = path.read_text()
    assert not re.search(r"site-packages|python3\.\d+|\.venv/", text), path.name


def spec_models() -> list[type[BaseModel]]:
    """Every pydantic model a job spec or an endpoint's options are made of."""
    found: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [*SPEC_CLASSES.values(), ServeOptions]
    while todo:
        model = todo.pop()
        if model in found:
            continue
        found.append(model)
        for info in model.model_fields.values():
            for arg in (info.annotation, *typing.get_args(info.annotation)):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    todo.append(arg)
    return found


def test_every_spec_field_is_described() -> None:
    """The spec reference (docs/reference/specs.md) is generated from these descriptions."""
    models = spec_models()
    assert len(models) >= 12
    missing = [
        f"{model.__name__}.{name}"
        for model in models
        for name, info in model.model_fields.items()
        if not info.description
    ]
    assert not missing, f"fields without a description: {missing}"
    assert all(model.__doc__ for model in models)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_spec_validates(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # example data paths are relative to the repository root
    if "../shared/data" in path.read_text():  # examples on the shared datasets need them
        shared_data(SHARED_DATA)
    spec = load_spec(path)
    assert spec.name and spec.kind
    assert sum(b["CPU"] for b in spec.gang()) > 0


def test_defaults_fit_masked_lm_pretraining(corpus: Path) -> None:
    spec = parse_spec({"kind": "tokenizer", "name": "t", "data": {"files": [str(corpus)]}})
    assert isinstance(spec, TokenizerJobSpec)
    assert spec.tokenizer.special_tokens == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    bpe = parse_spec(
        {
            "kind": "tokenizer",
            "name": "t",
            "data": {"files": [str(corpus)]},
            "tokenizer": {"algorithm": "bpe"},
        }
    )
    assert "<mask>" in bpe.tokenizer.special_tokens


def test_relative_paths_resolve_against_the_current_directory(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = load_spec(write(tmp_path, "kind: tokenizer\nname: t\ndata:\n  files: [corpus.txt]\n"))
    assert spec.data.files == [str(corpus)]


def test_every_problem_is_reported_at_once_with_key_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """kind: tokenizer
name: t
data:
  files: [missing.txt]
  colum: text
tokenizer:
  algorithm: sentencepiece
  vocab_size: 0
extra: 1
""",
    )
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    text = problems(exc)
    assert exc.value.exit_code == 2
    assert len(exc.value.problems) == 5
    assert f"{path}:4: data.files: no file matches 'missing.txt'" in text
    assert f"{path}:5: data.colum: unknown key" in text
    assert f"{path}:7: tokenizer.algorithm:" in text and "'wordpiece', 'bpe' or 'unigram'" in text
    assert f"{path}:8: tokenizer.vocab_size: Input should be greater than 0" in text
    assert f"{path}:9: extra: unknown key" in text


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "kind: tokenizer\nname: t\ndata:\n  files: [a.txt\n")
    with pytest.raises(SpecError, match=rf"{path}:5:1: malformed YAML"):
        load_spec(path)


def test_unknown_or_missing_kind(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        load_spec(write(tmp_path, "kind: train-everything\nname: t\n"))
    assert (
        "kind: 'train-everything' is not a job kind; expected one of: evaluate, finetune"
        in problems(exc)
    )
    with pytest.raises(SpecError, match="kind: is missing"):
        parse_spec({"name": "t"})


def test_names_that_would_escape_the_artifact_root_are_refused(corpus: Path) -> None:
    for bad in ("../evil", "a/b", "..", ".hidden", "x..y", ""):
        with pytest.raises(SpecError, match="name:"):
            parse_spec({"kind": "tokenizer", "name": bad, "data": {"files": [str(corpus)]}})


def test_vocab_size_must_leave_room_beyond_special_tokens(corpus: Path) -> None:
    with pytest.raises(SpecError, match="at least 261"):
        parse_spec(
            {
                "kind": "tokenizer",
                "name": "t",
                "data": {"files": [str(corpus)]},
                "tokenizer": {"algorithm": "bpe", "vocab_size": 100},
            }
        )
    with pytest.raises(SpecError, match="needs an unknown token"):
        parse_spec(
            {
                "kind": "tokenizer",
                "name": "t",
                "data": {"files": [str(corpus)]},
                "tokenizer": {"special_tokens": ["[PAD]", "[CLS]"]},
            }
        )


def test_overrides_set_nested_values_parsed_as_yaml(tmp_path: Path, corpus: Path) -> None:
    path = write(tmp_path, f"kind: tokenizer\nname: t\ndata:\n  files: [{corpus}]\n")
    spec = load_spec(
        path,
        [
            "tokenizer.vocab_size=1234",
            "tokenizer.lowercase=false",
            "resources.cpus=0.5",
            "name=other",
        ],
    )
    assert (spec.tokenizer.vocab_size, spec.tokenizer.lowercase) == (1234, False)
    assert spec.resources.cpus == 0.5 and spec.name == "other"


def test_bad_overrides_are_spec_errors(tmp_path: Path, corpus: Path) -> None:
    path = write(tmp_path, f"kind: tokenizer\nname: t\ndata:\n  files: [{corpus}]\n")
    with pytest.raises(SpecError, match="expected KEY=VALUE"):
        load_spec(path, ["tokenizer.vocab_size"])
    with pytest.raises(SpecError, match="name is not a mapping"):
        load_spec(path, ["name.x=1"])
    with pytest.raises(SpecError, match="tokenizer.vocab_sise: unknown key"):
        load_spec(path, ["tokenizer.vocab_sise=10"])


def training_spec(kind: str, corpus: Path, **extra: object) -> dict:
    base = {"kind": kind, "name": "m", "data": {"train": {"files": [str(corpus)]}}}
    if kind == "pretrain":
        base["tokenizer"] = "tok:1"
    if kind == "finetune":
        base["base"] = {"model": "clf@production"}
    return {**base, **extra}


def test_training_specs_validate_and_size_their_gang(corpus: Path) -> None:
    spec = parse_spec(
        training_spec(
            "pretrain", corpus, scaling={"num_workers": 2, "cpus_per_worker": 0.5, "data_cpus": 0.5}
        )
    )
    assert spec.gang() == [
        {"CPU": 0.0},
        {"CPU": 0.5},
        {"CPU": 0.5, "GPU": 0.0},
        {"CPU": 0.5, "GPU": 0.0},
    ]
    gpu = parse_spec(
        training_spec(
            "finetune",
            corpus,
            scaling={"num_workers": 4, "use_gpu": True, "strategy": "fsdp"},
            train={"precision": "bf16"},
        )
    )
    assert gpu.gang()[2] == {"CPU": 1.0, "GPU": 1.0} and len(gpu.gang()) == 6
    # one worker trains inside the driver (Ray Train's local mode): the driver takes its share
    alone = parse_spec(
        training_spec(
            "finetune", corpus, scaling={"num_workers": 1, "cpus_per_worker": 2, "use_gpu": True}
        )
    )
    assert alone.gang() == [{"CPU": 2.0, "GPU": 1.0}, {"CPU": 0.5}]
    # an in-memory pipeline runs in the driver: no CPUs for Ray Data
    data = {"train": {"files": [str(corpus)]}, "pipeline": "in-memory"}
    in_memory = parse_spec(training_spec("finetune", corpus, data=data))
    assert in_memory.gang() == [{"CPU": 1.0, "GPU": 0.0}]


def test_training_spec_cross_field_errors_name_their_keys(corpus: Path) -> None:
    with pytest.raises(SpecError) as exc:
        parse_spec(training_spec("finetune", corpus, scaling={"strategy": "fsdp"}))
    assert "scaling.strategy fsdp needs scaling.num_workers of 2 or more" in problems(exc)
    cpu_fsdp = {"strategy": "fsdp", "num_workers": 2, "cpus_per_worker": 0.5}
    sharded = parse_spec(training_spec("finetune", corpus, scaling=cpu_fsdp))
    assert sharded.scaling.strategy == "fsdp"
    with pytest.raises(SpecError, match="data.pipeline in-memory needs scaling.num_workers 1"):
        parse_spec(
            training_spec(
                "finetune",
                corpus,
                data={"train": {"files": [str(corpus)]}, "pipeline": "in-memory"},
                scaling={"num_workers": 2},
            )
        )
    with pytest.raises(SpecError, match="train.precision bf16 needs scaling.use_gpu"):
        parse_spec(training_spec("finetune", corpus, train={"precision": "bf16"}))
    with pytest.raises(SpecError, match="exactly one of base.model"):
        parse_spec(training_spec("finetune", corpus, base={}))
    with pytest.raises(SpecError, match="best_metric 'f1' must be one of metrics"):
        parse_spec(training_spec("finetune", corpus, metrics=["accuracy"], best_metric="f1"))
    with pytest.raises(SpecError, match="model.hidden 100 must be divisible by model.heads 3"):
        parse_spec(training_spec("pretrain", corpus, model={"hidden": 100, "heads": 3}))
    with pytest.raises(SpecError, match="data.max_length 256 exceeds model.max_positions 128"):
        parse_spec(
            training_spec(
                "pretrain",
                corpus,
                model={"max_positions": 128},
                data={"train": {"files": [str(corpus)]}, "max_length": 256},
            )
        )
    with pytest.raises(SpecError, match="is not NAME, NAME:VERSION or NAME@ALIAS"):
        parse_spec(training_spec("pretrain", corpus, tokenizer="../etc"))


def test_base_path_must_be_a_model_folder(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is not a Hugging Face model folder"):
        parse_spec(training_spec("finetune", corpus, base={"path": str(tmp_path)}))
    (tmp_path / "config.json").write_text("{}")
    spec = parse_spec(training_spec("finetune", corpus, base={"path": str(tmp_path)}))
    assert spec.base.path == str(tmp_path)


@pytest.mark.parametrize("kind", ["finetune", "evaluate"])
def test_unknown_metrics_are_refused_at_submit_time(kind: str, corpus: Path) -> None:
    spec = (
        training_spec("finetune", corpus, metrics=["accuracy", "bleu"])
        if kind == "finetune"
        else {
            "kind": "evaluate",
            "name": "eval-sst2",
            "model": "clf@production",
            "data": {"files": [str(corpus)], "columns": {"text": "text"}},
            "metrics": ["accuracy", "bleu"],
        }
    )
    with pytest.raises(SpecError) as exc:
        parse_spec(spec)
    assert "metrics: unknown ['bleu']; known: ['accuracy', 'f1'" in problems(exc)
