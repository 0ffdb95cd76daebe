"""The language task: windows as an EpochLoader, stateful steps, metrics, run files, resuming."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tests.language.helpers import base_config, make, write_corpus

from rnnlab import api
from rnnlab import config as cfg
from rnnlab.data.text import BPTTBatches, Vocabulary
from rnnlab.errors import ConfigError, DataError
from rnnlab.language.model import LanguageModel
from rnnlab.language.windows import TrainWindows
from rnnlab.tasks import TASKS

# ------------------------------------------------------------------------------ windows


def test_train_windows_resume_and_shard() -> None:
    windows = TrainWindows(BPTTBatches(torch.arange(26), batch_size=4, bptt=2))
    whole = list(windows.batches())
    assert len(windows) == len(whole) == 3
    assert [x.shape[0] for x, _ in whole] == [2, 2, 1]
    tail = list(windows.batches(start=1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(tail, whole[1:], strict=True))
    # targets are the inputs one row down: column 0 is the stream 0 1 2 3 4 5
    assert whole[0][0][:, 0].tolist() == [0, 1] and whole[0][1][:, 0].tolist() == [1, 2]
    windows.shard(1, 2)  # process 1 of 2 reads streams 2 and 3
    x, _ = next(iter(windows.batches()))
    assert torch.equal(x, whole[0][0][:, 2:4])
    with pytest.raises(DataError, match="divisible"):
        windows.shard(0, 3)


def test_varied_windows_keep_a_fixed_count_and_cover_the_split() -> None:
    source = BPTTBatches(torch.arange(4000), batch_size=4, bptt=20, vary=True, seed=3)
    windows = TrainWindows(source)
    for epoch in range(6):
        plan = windows.plan(epoch)
        assert len(plan) == len(windows)
        starts = [start for start, _ in plan]
        assert starts[0] == 0
        assert all(a + n == b for (a, n), b in zip(plan, starts[1:], strict=False))
    windows.set_epoch(2)
    assert next(iter(windows.batches()))[0].shape[1] == 4


# --------------------------------------------------------------------------- the task


def test_step_carries_a_detached_state(tmp_path: Path) -> None:
    torch.manual_seed(0)  # the model's weights: independent of the tests that ran before
    task = make(write_corpus(tmp_path / "c"))
    data = task.build_data()
    assert data.spec.vocab_size == len(task.vocab or []) == 2 + 12  # <unk> <eos> + 12 words
    model = task.build_model(data.spec)
    assert isinstance(model, LanguageModel)
    first, second = list(data.train.batches())[:2]
    loss, state, metrics = task.step(model, first, task.initial_state())
    assert metrics["count"] == first[1].numel() == 5 * 4
    assert not state[0].requires_grad and state[0].grad_fn is None
    loss.backward()  # the graph of this window only
    carried, _, _ = task.step(model, second, state)
    fresh, _, _ = task.step(model, second, None)
    assert carried.item() != fresh.item()  # the carried state changes the prediction


def test_sum_over_time_scales_the_loss_by_the_window_length(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c")
    mean_task = make(corpus)
    sum_task = make(corpus, "data.loss_reduction=sum_over_time")
    data = mean_task.build_data()
    sum_task.build_data()
    torch.manual_seed(0)
    model = mean_task.build_model(data.spec)
    batch = next(iter(data.train.batches()))
    mean_loss, _, mean_metrics = mean_task.step(model, batch, None)
    sum_loss, _, sum_metrics = sum_task.step(model, batch, None)
    assert sum_loss.item() == pytest.approx(5 * mean_loss.item(), rel=1e-6)
    assert sum_metrics["loss"] == pytest.approx(mean_loss.item(), rel=1e-6)
    assert "loss" not in mean_metrics


def test_perplexity_is_exp_of_the_mean_token_loss(tmp_path: Path) -> None:
    task = make(write_corpus(tmp_path / "c"), "data.eval_batch_size=1", "data.eval_seq_len=7")
    data = task.build_data()
    model = task.build_model(data.spec).eval()
    metrics = task.evaluate(model, data.valid)
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]), rel=1e-9)
    # by hand: one stream, the whole split in one pass, mean over every target token
    corpus = task.load_corpus(task.vocab)
    tokens = corpus.valid
    with torch.no_grad():
        logits, _ = model(tokens[:-1].unsqueeze(1))  # (N-1, 1, V)
    expected = F.cross_entropy(logits.squeeze(1), tokens[1:]).item()
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5)


def test_character_level_reports_bits_per_character(tmp_path: Path) -> None:
    raw = tmp_path / "text.txt"
    raw.write_text("hello world, hello there.\n" * 40, encoding="utf-8")
    task = make(raw, "data.level=char", "data.split=[0.8, 0.1, 0.1]")
    data = task.build_data()
    assert task.vocab is not None and task.vocab.level == "char"
    metrics = task.evaluate(task.build_model(data.spec).eval(), data.valid)
    assert set(metrics) == {"loss", "bits_per_character"}
    assert metrics["bits_per_character"] == pytest.approx(metrics["loss"] / math.log(2))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.corpus=ptb"], "exactly one of data.corpus"),
        (["train.seq_len=none"], "train.seq_len is required"),
        (["model.bidirectional=true"], "unidirectional"),
        (["model.input_projection=4"], "embeds tokens"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make(tmp_path, *overrides)


def test_split_too_small_for_the_eval_batch(tmp_path: Path) -> None:
    task = make(write_corpus(tmp_path / "c", repeats=1), "data.eval_batch_size=100")
    with pytest.raises(DataError, match=r"data\.eval_batch_size=100"):
        task.build_data()


def test_empty_split_file_is_a_data_error(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c")
    (corpus / "valid.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"valid\.txt holds no tokens"):
        make(corpus).build_data()


def test_vocabulary_written_and_checked_in_the_run_dir(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c")
    task = make(corpus)
    task.build_data()
    run = tmp_path / "run"
    task.prepare_run_dir(run)
    saved = Vocabulary.load(run / "vocab.json")
    assert saved == task.vocab
    task.prepare_run_dir(run, resume=True)  # same vocabulary: fine
    other = make(corpus, "data.max_size=5")
    other.build_data()
    with pytest.raises(DataError, match=r"vocabulary mismatch: .*vocab.json .*14 tokens there, 5"):
        other.prepare_run_dir(run, resume=True)


# --------------------------------------------------------------------------- training


def test_resumed_mid_epoch_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c")
    config = base_config(corpus, "train.epochs=2", "train.checkpoint_every=5")
    api.train(config, run_dir=tmp_path / "straight", quiet=None)
    api.train(
        cfg.with_overrides(config, ["train.max_steps=13"]), run_dir=tmp_path / "cut", quiet=None
    )
    # step 13 is mid-epoch: the carried state is restored from the checkpoint
    api.train(resume=tmp_path / "cut", overrides=["train.max_steps=none"], quiet=None)
    straight = torch.load(tmp_path / "straight/checkpoints/last.pt", weights_only=True)
    resumed = torch.load(tmp_path / "cut/checkpoints/last.pt", weights_only=True)
    assert straight["step"] == resumed["step"]
    for name, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][name]), name


@pytest.mark.parametrize(
    "recipe",
    ["ptb-small", "ptb-medium", "ptb-large", "ptb-tied", "ptb-char", "tinyshakespeare-char"],
)
def test_language_recipes_validate(recipe: str) -> None:
    task = TASKS.get("language")(cfg.load(recipe))
    assert task.config.task.name == "language"


def test_ptb_small_is_zarembas_small_model() -> None:
    config = cfg.load("ptb-small")
    model, train, data = config.model, config.train, config.data
    assert (model.cell, model.num_layers, model.hidden_size, model.dropout) == ("lstm", 2, 200, 0)
    assert (model.init_range, train.optimizer, train.lr, train.grad_clip_norm) == (
        0.1,
        "sgd",
        1.0,
        5.0,
    )
    assert (train.batch_size, train.seq_len, train.epochs) == (20, 20, 13)
    assert data.loss_reduction == "sum_over_time"  # type: ignore[attr-defined]
    schedule = train.schedule
    assert (schedule.kind, schedule.start_epoch, schedule.factor) == ("step", 4, 2.0)  # type: ignore[union-attr]


def test_to_device_moves_the_training_streams_once(tmp_path: Path) -> None:
    task = make(write_corpus(tmp_path / "c"))
    data = task.build_data()
    first = next(iter(data.train.batches()))
    moved = task.to_device(first, torch.device("meta"))  # stands in for a GPU
    assert moved[0].device.type == "meta"
    later = next(iter(data.train.batches(start=1)))
    assert later[0].device.type == "meta"  # sliced from streams already there


def test_non_utf8_corpus_names_the_file_and_offset(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c")
    (corpus / "train.txt").write_bytes(b"the cat\nsat \xff on\n")
    with pytest.raises(DataError, match=r"train\.txt is not UTF-8: byte 0xff at offset 12"):
        make(corpus).build_data()
