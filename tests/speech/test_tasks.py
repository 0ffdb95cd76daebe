"""Speech tasks on a generated corpus of tones standing in for words: config checks, cached
features, per-batch augmentation, a tiny classifier and a tiny CTC model that learn it, the
confusion matrix and run files, and the recognizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import rnnlab.api as api
from rnnlab import config as cfg
from rnnlab.errors import ConfigError, RunDirError
from rnnlab.speech import (
    CTCVocabulary,
    SpeechCTCTask,
    SpeechDigitsTask,
    TokenSpan,
    load_recognizer,
    plot_confusion_matrix,
    tone_word,
    word_times,
    write_confusion_matrix,
)
from rnnlab.tasks import TASKS

FEATURES = {"n_mfcc": 8, "n_mels": 16, "deltas": 0, "hop_ms": 20.0}
TONES = {"words": 3, "train_samples": 48, "valid_samples": 24, "test_samples": 24}


def config(task: str, data: dict[str, Any] | None = None, **train: Any) -> cfg.ExperimentConfig:
    """A tiny tones config of ``task`` (bidirectional GRU of 24)."""
    return cfg.from_dict(
        {
            "task": {"name": task},
            "data": {"source": "tones", "features": FEATURES, "tones": TONES, **(data or {})},
            "model": {"cell": "gru", "hidden_size": 24, "bidirectional": True, "pooling": "mean"},
            "train": {
                "epochs": 6,
                "batch_size": 16,
                "lr": 0.02,
                "grad_clip_norm": 5.0,
                "device": "cpu",
                "num_threads": 1,
                "log_every_steps": 1000,
                **train,
            },
        }
    )


CTC_DATA = {
    "train_utterances": 96,
    "valid_utterances": 16,
    "test_utterances": 16,
    "max_digits": 3,
    "silence_ms": [30.0, 120.0],
    "beam_width": 4,
}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("speech") / "digits"
    api.train(config("speech-digits"), run_dir=folder, quiet=None)
    return folder


@pytest.fixture(scope="module")
def ctc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("speech") / "ctc"
    api.train(config("speech-ctc", CTC_DATA, epochs=15), run_dir=folder, quiet=None)
    return folder


def test_registered_with_their_schemas() -> None:
    assert TASKS.get("speech-digits") is SpeechDigitsTask
    assert TASKS.get("speech-ctc") is SpeechCTCTask
    assert SpeechCTCTask.Data.model_fields["max_digits"].default == 7


@pytest.mark.parametrize(
    ("task", "data", "message"),
    [
        ("speech-digits", {"valid_indices": [3, 5]}, "data.valid_indices"),
        ("speech-digits", {"features": {"n_mfcc": 50}}, "n_mfcc"),
        ("speech-digits", {"augment": {"noise_snr_db": [20.0, 10.0]}}, "low <= high"),
        ("speech-ctc", {"min_digits": 4, "max_digits": 2}, "min_digits=4"),
        ("speech-ctc", {"unit": "phone"}, "data.unit"),
        ("speech-digits", {"sorce": "tones"}, "did you mean 'source'"),
    ],
)
def test_bad_data_settings_are_one_line_errors(
    task: str, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        config(task, data)
    assert "\n" not in str(info.value)


def test_tone_word_has_its_pitch() -> None:
    wave = tone_word(2, torch.Generator().manual_seed(0), 8000)  # 400 + 300 * 2 Hz
    spectrum = torch.fft.rfft(wave.double(), n=8000).abs()
    assert torch.isfinite(wave).all() and 0.12 <= wave.numel() / 8000 <= 0.3
    assert int(spectrum.argmax()) == pytest.approx(1000, abs=5)


def test_vocabulary_words_and_characters() -> None:
    words = CTCVocabulary.for_words(["zero", "one", "two"], "word")
    assert words.num_classes == 4 and words.encode([2, 0]) == [3, 1]
    assert words.decode([3, 1]) == "two zero"
    chars = CTCVocabulary.for_words(["zero", "one", "two"], "char")
    encoded = chars.encode([1, 2])
    assert len(encoded) == len("one two") and 0 not in encoded
    assert chars.decode(encoded) == "one two"
    space = chars.tokens.index(" ") + 1
    spans = [TokenSpan(c, 2 * i, 2 * i + 1) for i, c in enumerate(encoded)]
    timed = word_times(spans, chars, 0.01)
    assert [w["word"] for w in timed] == ["one", "two"] and space in encoded
    assert timed[0] == {"word": "one", "start": 0.0, "end": 0.05}


def test_features_are_cached_and_batches_padded() -> None:
    task = TASKS.get("speech-digits")(config("speech-digits"))
    data = task.build_data()
    assert data.spec.num_features == 8 and data.spec.num_classes == 3
    train = data.train
    train.set_epoch(0)
    features, frames, labels = next(iter(train.batches()))
    assert features.shape[0] == 16 and features.shape[2] == 8
    assert int(frames.max()) == features.shape[1] and labels.max() < 3
    first = train.utterances[0].features  # type: ignore[attr-defined]
    train.set_epoch(1)
    list(train.batches())
    assert train.utterances[0].features is first  # type: ignore[attr-defined]
    # padding is zero and every row's valid frames are its cached features
    row = int(frames.argmin())
    assert features[row, int(frames[row]) :].abs().sum() == 0


def test_augmentation_in_training_only_and_fixed_by_seed_epoch_batch() -> None:
    augment = {"freq_masks": 2, "freq_width": 3, "time_masks": 2, "time_width": 4}
    augment["noise_snr_db"] = [10.0, 20.0]  # type: ignore[assignment]
    task = TASKS.get("speech-digits")(config("speech-digits", {"augment": augment}))
    data = task.build_data()
    data.train.set_epoch(2)
    whole = list(data.train.batches())
    again = list(data.train.batches(start=1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(whole[1:], again, strict=True))
    data.train.set_epoch(3)
    assert not torch.equal(next(iter(data.train.batches()))[0], whole[0][0])
    # the same rows without augmentation differ from the augmented ones
    rows = data.train.order()[:16]
    plain = data.train.collate_batch(  # type: ignore[attr-defined]
        [data.train.utterances[int(i)] for i in rows],  # type: ignore[attr-defined]
        None,
    )
    augmented = next(iter(data.train.batches()))
    assert plain[0].shape == augmented[0].shape and not torch.equal(plain[0], augmented[0])
    # evaluation loaders give the cached features unchanged
    valid = next(iter(data.valid))
    cached = data.valid.utterances[0].features  # type: ignore[attr-defined]
    assert torch.equal(valid[0][0, : cached.shape[0]], cached)


def test_ctc_batches_carry_targets() -> None:
    task = TASKS.get("speech-ctc")(config("speech-ctc", CTC_DATA))
    data = task.build_data()
    assert data.spec.num_classes == 4  # blank + 3 words
    features, frames, targets, target_lengths = next(iter(data.valid))
    assert targets.shape == (16, int(target_lengths.max()))
    assert int(target_lengths.min()) >= 1 and int(target_lengths.max()) <= 3
    assert (targets[:, 0] >= 1).all() and int(targets.max()) <= 3
    assert features.shape[:2] == (16, int(frames.max()))


def test_tiny_classifier_learns_the_tones(digits_run: Path) -> None:
    records = [json.loads(line) for line in (digits_run / "metrics.jsonl").open()]
    test = [r for r in records if r.get("split") == "test"][-1]
    assert test["accuracy"] >= 0.9


def test_confusion_matrix_from_a_finished_run(digits_run: Path) -> None:
    png = write_confusion_matrix(digits_run)
    assert png == digits_run / "plots" / "confusion.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((digits_run / "confusion.json").read_text())
    counts = torch.tensor(saved["counts"])
    assert saved["labels"] == ["zero", "one", "two"] and int(counts.sum()) == 24
    assert int(counts.trace()) >= 21


def test_test_evaluation_writes_the_confusion_matrix_into_the_run_dir(tmp_path: Path) -> None:
    task = TASKS.get("speech-digits")(config("speech-digits"))
    task.prepare_run_dir(tmp_path)  # what the trainer's run-dir hook calls
    data = task.build_data()
    model = task.build_model(data.spec).eval()
    task.evaluate(model, data.valid)
    assert not (tmp_path / "plots" / "confusion.png").exists()
    metrics = task.evaluate(model, data.test)  # type: ignore[arg-type]
    assert (tmp_path / "plots" / "confusion.png").is_file()
    assert json.loads((tmp_path / "features.json").read_text())["features"]["n_mfcc"] == 8
    assert task.confusion is not None and int(task.confusion.sum()) == 24
    assert metrics["accuracy"] == pytest.approx(float(task.confusion.trace()) / 24)


def test_plot_confusion_matrix_checks_its_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(2, 2\) for 2 labels"):
        plot_confusion_matrix(torch.ones(3, 3), ["a", "b"], tmp_path / "c.png")


def test_tiny_ctc_model_learns_connected_tones(ctc_run: Path) -> None:
    records = [json.loads(line) for line in (ctc_run / "metrics.jsonl").open()]
    test = [r for r in records if r.get("split") == "test"][-1]
    assert test["wer"] <= 0.2 and test["wer_beam"] <= 0.2
    assert test["cer"] <= 0.2 and test["cer_beam"] <= 0.2
    valid = [r for r in records if r.get("split") == "valid"]
    assert "wer_beam" not in valid[-1]  # beam search only at the test evaluation by default


def test_recognizer_transcribes_with_word_times(ctc_run: Path, tmp_path: Path) -> None:
    import soundfile as sf

    generator = torch.Generator().manual_seed(7)
    silence = torch.zeros(800)  # 0.1 s
    words = [2, 0, 1]
    pieces = [silence]
    starts = []
    for word in words:
        starts.append(sum(p.numel() for p in pieces) / 8000)
        pieces += [tone_word(word, generator), silence]
    path = tmp_path / "three.wav"
    sf.write(path, torch.cat(pieces).numpy(), 8000)
    recognizer = load_recognizer(ctc_run)
    result = recognizer.recognize_file(path)
    assert result["transcript"] == "two zero one" and result["digits"] == words
    for start, word in zip(starts, result["words"], strict=True):
        assert word["start"] <= word["end"] and abs(word["start"] - start) < 0.25
    assert recognizer.recognize_file(path, beam_width=4)["transcript"] == "two zero one"


def test_load_recognizer_rejects_other_runs(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not a run directory"):
        load_recognizer(tmp_path)
    adding = cfg.load("adding", ["train.max_steps=1", "data.train_samples=32"])
    cfg.save(adding, tmp_path / "config.toml")
    with pytest.raises(RunDirError, match="not a speech task"):
        load_recognizer(tmp_path)


@pytest.mark.parametrize("recipe", ["fsdd-gru", "fsdd-lstm", "fsdd-rnn", "fsdd-ctc"])
def test_fsdd_recipes_build_their_models(recipe: str) -> None:
    task = TASKS.get((config_ := cfg.load(recipe)).task.name)(config_)
    assert isinstance(task, SpeechDigitsTask | SpeechCTCTask)
    spec = task.spec()
    assert spec.num_features == 39  # 13 MFCC + deltas + delta-deltas
    model = task.build_model(spec).eval()
    output, _ = model(torch.randn(2, 30, 39), torch.tensor([30, 17]))
    classes = 10 if recipe != "fsdd-ctc" else 11  # ten digits (CTC: and the blank)
    assert output.shape[-1] == classes and config_.data.source == "fsdd"


def test_character_targets_spell_the_words() -> None:
    task = TASKS.get("speech-ctc")(config("speech-ctc", {**CTC_DATA, "unit": "char"}))
    assert isinstance(task, SpeechCTCTask)
    data = task.build_data()
    vocab = task.vocabulary
    assert data.spec.num_classes == len(set("zero one two")) + 1
    _, _, targets, target_lengths = next(iter(data.valid))
    utterance = data.valid.utterances[0]  # type: ignore[attr-defined]
    text = vocab.decode(targets[0, : int(target_lengths[0])].tolist())
    assert text == " ".join(("zero", "one", "two")[d] for d in utterance.digits)
    model = task.build_model(data.spec)
    loss, _, _ = task.step(model, next(iter(data.train.batches())), None)
    assert torch.isfinite(loss)
    metrics = task.evaluate(model.eval(), data.valid)
    assert {"loss", "wer", "cer", "sentence_accuracy"} <= set(metrics)
