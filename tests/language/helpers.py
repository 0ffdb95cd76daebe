"""A tiny word corpus and the config of a small language run, shared by the language tests."""

from __future__ import annotations

from pathlib import Path

from rnnlab import config as cfg
from rnnlab.language.task import LanguageTask
from rnnlab.tasks import TASKS

SENTENCES = ["the cat sat on the mat", "a dog ate the bone", "the bird sang a song"]


def write_corpus(folder: Path, repeats: int = 30) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(SENTENCES * repeats) + "\n"
    for split in ("train", "valid", "test"):
        (folder / f"{split}.txt").write_text(text, encoding="utf-8")
    return folder


def base_config(corpus: Path, *overrides: str) -> cfg.ExperimentConfig:
    raw = {
        "task": {"name": "language"},
        "data": {"path": str(corpus), "eval_batch_size": 2, "test_batch_size": 1},
        "model": {"cell": "lstm", "hidden_size": 16, "embedding_size": 8, "num_layers": 1},
        "train": {
            "optimizer": "adam",
            "lr": 0.02,
            "batch_size": 4,
            "seq_len": 5,
            "epochs": 1,
            "device": "cpu",
            "log_every_steps": 1000,
            "checkpoint_every": 1000,
        },
    }
    return cfg.with_overrides(cfg.from_dict(raw), list(overrides))


def make(corpus: Path, *overrides: str) -> LanguageTask:
    task = TASKS.get("language")(base_config(corpus, *overrides))
    assert isinstance(task, LanguageTask)
    return task
