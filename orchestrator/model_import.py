"""`orch models import`: a local Hugging Face model folder registered as a new model version.

The folder is checked (a config, a tokenizer, safetensors weights), its task read from the
config's architecture, its files copied under the artifact root (pickled weight files are
never copied: they can run code when loaded), fingerprinted, and registered with lineage
"imported from PATH". From then on it is a version like any other: served, evaluated,
promoted, and fine-tuned from (``base.model: NAME@ALIAS``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import UsageError
from orchestrator.registry import Registry, store
from orchestrator.registry.artifacts import publish_folder
from orchestrator.specs.names import check_name
from orchestrator.specs.serving import task_of_architectures
from orchestrator.specs.vocabulary import MODEL_TASKS

# Weight formats that are Python pickles (torch.save, joblib...): loading one can run code.
PICKLED_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
# Any one of these makes a folder's tokenizer loadable by AutoTokenizer.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model")


@dataclass(frozen=True)
class Imported:
    name: str
    version: int
    task: str
    artifact_uri: str
    fingerprint: str
    files: int
    skipped: list[str]  # pickled files left behind
    imported_from: str


def read_config(folder: Path) -> dict[str, Any]:
    """The folder's config.json, with errors that name the file."""
    path = folder / "config.json"
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    if not path.is_file():
        raise UsageError(f"{folder} is not a Hugging Face model folder: it has no config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path} must hold a JSON object")
    return config


def check_safetensors(path: Path) -> None:
    """Refuse a weights file that is not whole, readable safetensors (its header parsed and
    the data it describes all there), naming the file: cheap (no tensor is read), and what
    would otherwise fail only inside a replica or a job, after a minute of retries."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as weights:
            weights.keys()
    except SafetensorError as exc:
        raise UsageError(f"{path} is not a valid safetensors file: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read: {exc.strerror or exc}") from None


def check_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """The files to copy and the pickled ones left behind (relative paths); refuses a folder
    without safetensors weights or a tokenizer, saying why."""
    files = sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    weights = [p for p in files if p.suffix.lower() == ".safetensors"]
    pickled = [p for p in files if p.suffix.lower() in PICKLED_SUFFIXES]
    if not weights:
        if pickled:
            raise UsageError(
                f"{folder} holds only pickled weights ({', '.join(map(str, pickled[:3]))}): "
                "pickle files can run code when they are loaded, so only safetensors weights "
                "are imported",
                hint="convert them where you trust the file: "
                "AutoModel.from_pretrained(FOLDER).save_pretrained(NEW_FOLDER) writes "
                "model.safetensors",
            )
        raise UsageError(f"{folder} holds no model weights (no *.safetensors file)")
    for path in weights:
        check_safetensors(folder / path)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise UsageError(
            f"{folder} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}): serving, "
            "evaluating and fine-tuning need the model's own tokenizer beside it",
            hint="AutoTokenizer.from_pretrained(...).save_pretrained(FOLDER) puts it there",
        )
    return [p for p in files if p.suffix.lower() not in PICKLED_SUFFIXES], pickled


def resolve_task(config: dict[str, Any], given: str | None, folder: Path) -> str:
    """The model task: read from the config's architectures; a given task must agree.
    Encoder-decoder and generative models are refused: every task served here is an
    encoder's."""
    architectures = config.get("architectures") or []
    if config.get("is_encoder_decoder") or any(
        isinstance(a, str)
        and a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration"))
        for a in (architectures if isinstance(architectures, list) else [])
    ):
        raise UsageError(
            f"{folder / 'config.json'} describes a generative model "
            f"({architectures or 'encoder-decoder'}); only encoders are imported (the tasks "
            "served here are those of encoders)"
        )
    found = task_of_architectures(architectures)
    if given is not None and given not in MODEL_TASKS:
        raise UsageError(f"--task must be one of {', '.join(MODEL_TASKS)}, not {given}")
    if found is None and given is None:
        raise UsageError(
            f"{folder / 'config.json'} names no architecture this service knows "
            f"({architectures or 'none'}): give the task with --task"
        )
    if given is not None and found is not None and given != found:
        raise UsageError(
            f"--task {given} disagrees with {folder / 'config.json'}: its architecture "
            f"{architectures[0]} is a {found} model"
        )
    return given or str(found)


def fingerprint(folder: Path, files: list[Path]) -> str:
    """sha256 over every file's relative path and contents, in name order."""
    digest = hashlib.sha256()
    for rel in files:
        digest.update(str(rel).encode() + b"\0")
        with open(folder / rel, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def import_model(
    registry: Registry,
    artifact_root: Path,
    folder: Path,
    name: str,
    task: str | None = None,
    alias: str | None = None,
    moved_by: str | None = None,
) -> Imported:
    """Copy ``folder`` under the artifact root and register it as the next version of
    ``name`` (pointing ``alias`` at it when given), atomically."""
    check_name(name, "model name")
    if alias is not None:
        check_name(alias, "alias")
    folder = folder.expanduser().resolve()
    config = read_config(folder)
    task = resolve_task(config, task, folder)
    files, pickled = check_folder(folder)
    with registry.session() as session:
        store.check_model_task(session, name, task)  # before copying gigabytes
    staging = artifact_root / ".staging" / f"import-{uuid.uuid4().hex[:12]}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise UsageError(f"the artifact root {artifact_root} is not writable: {exc}") from None
    try:
        for rel in files:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / rel, staging / rel)  # follows links (a Hub cache's blobs)
        sha = fingerprint(staging, files)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UsageError(f"copying {folder} under {artifact_root} failed: {exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    def add(session: Any) -> Any:
        return store.add_model_version(
            session,
            name=name,
            task=task,
            artifact_uri="",
            base_model=None,
            fingerprint=sha,
            imported_from=str(folder),
        )

    def point_alias(session: Any, row: Any) -> None:
        if alias is not None:
            session.flush()
            store.set_alias(session, name, row.version, alias, moved_by=moved_by)

    row = publish_folder(registry, staging, artifact_root / "models" / name, add, point_alias)
    return Imported(
        name,
        row.version,
        task,
        row.artifact_uri,
        sha,
        len(files),
        [str(p) for p in pickled],
        str(folder),
    )
