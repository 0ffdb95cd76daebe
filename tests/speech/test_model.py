"""Speech models: shapes, lengths honoured, and a tiny classifier that learns tone "words"."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from rnnlab import GRU, LSTM, RNN
from rnnlab.data.audio import FeatureConfig, FeatureExtractor
from rnnlab.speech import decode_batch
from rnnlab.speech.model import CTCHead, CTCModel, SpeechClassifier, final_state


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; two threads on a loaded 2-core machine were
    measured 10x slower (thread contention), so these tests pin one and restore it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


LAYERS = {
    "rnn": lambda: RNN(6, 8, batch_first=True),
    "lstm-proj-bi": lambda: LSTM(6, 8, batch_first=True, bidirectional=True, proj_size=5),
    "gru-2-bi": lambda: GRU(6, 8, num_layers=2, batch_first=True, bidirectional=True),
    "gru-layer-norm": lambda: GRU(6, 8, batch_first=True, layer_norm=True),
    "lstm-time-first": lambda: LSTM(6, 8, bidirectional=True),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_classifier_ignores_padding(name: str, pooling: str) -> None:
    torch.manual_seed(0)
    model = SpeechClassifier(LAYERS[name](), num_classes=4, pooling=pooling).eval()  # type: ignore[arg-type]
    x = torch.randn(3, 12, 6)
    lengths = torch.tensor([12, 7, 3])
    logits = model(x, lengths)
    assert logits.shape == (3, 4)
    for row, n in enumerate(lengths.tolist()):
        alone = model(x[row : row + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(logits[row : row + 1], alone, atol=1e-5, rtol=1e-5)
    noisy_padding = x.clone()
    noisy_padding[1, 7:] = 100.0
    torch.testing.assert_close(model(noisy_padding, lengths), logits, atol=1e-5, rtol=1e-5)


def test_last_state_of_a_bidirectional_layer_reads_both_ends() -> None:
    torch.manual_seed(1)
    gru = GRU(6, 8, batch_first=True, bidirectional=True)
    x, lengths = torch.randn(2, 10, 6), torch.tensor([10, 4])
    out, h_n = gru(x, lengths=lengths)
    final = final_state(h_n, bidirectional=True)
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(final[row, :8], out[row, n - 1, :8])  # forward at the end
        torch.testing.assert_close(final[row, 8:], out[row, 0, 8:])  # reverse at frame 0


def test_ctc_model_gives_normalized_log_probs_and_a_finite_loss() -> None:
    torch.manual_seed(2)
    model = CTCModel(GRU(6, 8, batch_first=True, bidirectional=True), num_tokens=3)
    x, lengths = torch.randn(2, 15, 6), torch.tensor([15, 9])
    log_probs = model(x, lengths)
    assert log_probs.shape == (2, 15, 4)
    torch.testing.assert_close(log_probs.logsumexp(-1), torch.zeros(2, 15), atol=1e-5, rtol=0)
    loss = model.loss(
        log_probs, lengths, torch.tensor([[1, 2, 3], [3, 3, 0]]), torch.tensor([3, 2])
    )
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    assert all(p.grad is not None for p in model.parameters())
    head = CTCHead(16, 4)
    assert head(torch.randn(2, 5, 16), None, None).shape == (2, 5, 4)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="pooling must be"):
        SpeechClassifier(GRU(6, 8), 3, pooling="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"blank must be a class index in \[0, 3\], got 5"):
        CTCModel(GRU(6, 8), num_tokens=3, blank=5)
    with pytest.raises(ValueError, match="features must be"):
        SpeechClassifier(GRU(6, 8), 3)(torch.randn(5, 6))


# ------------------------------------------------------------------- learning a tiny corpus

RATE = 8000
# Three "words" made of tones: two are the same tones in opposite order, so telling them
# apart needs memory of order, not only which frequencies occur.
WORDS = [(500.0, 1500.0), (1500.0, 500.0), (1000.0, 1000.0)]


def tone_word(word: int, gen: torch.Generator) -> torch.Tensor:
    parts = []
    for freq in WORDS[word]:
        seconds = 0.08 + 0.08 * float(torch.rand(1, generator=gen))
        t = torch.arange(int(seconds * RATE)) / RATE
        freq = freq * (1 + 0.05 * (float(torch.rand(1, generator=gen)) - 0.5))
        parts.append(torch.sin(2 * math.pi * freq * t))
    wave = torch.cat(parts) * (0.2 + 0.6 * float(torch.rand(1, generator=gen)))
    return wave + 0.02 * torch.randn(wave.shape, generator=gen)


def tone_corpus(size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(size) % len(WORDS)
    waves = [tone_word(int(w), gen) for w in labels]
    lengths = torch.tensor([w.numel() for w in waves])
    batch = torch.zeros(size, int(lengths.max()))
    for row, wave in enumerate(waves):
        batch[row, : wave.numel()] = wave
    feats, frames = FeatureExtractor(
        FeatureConfig(sample_rate=RATE, kind="logmel", n_mels=20, window_ms=20, hop_ms=10)
    )(batch, lengths)
    return feats, frames, labels


def test_tiny_classifier_learns_tone_words() -> None:
    torch.manual_seed(0)
    train_x, train_len, train_y = tone_corpus(90, seed=0)
    test_x, test_len, test_y = tone_corpus(30, seed=1)
    model = SpeechClassifier(GRU(20, 24, batch_first=True), num_classes=3, pooling="last")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(80):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(train_x, train_len), train_y)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(test_x, test_len).argmax(-1) == test_y).float().mean())
    assert accuracy >= 0.9, accuracy  # chance is 1/3


def test_tiny_ctc_model_learns_to_spell_two_tone_words() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(5)
    # utterances of two words each, joined: the model must emit both, in order
    pairs = [(a, b) for a in range(3) for b in range(3) if a != b] * 10  # 60
    waves = [torch.cat([tone_word(a, gen), torch.zeros(400), tone_word(b, gen)]) for a, b in pairs]
    lengths = torch.tensor([w.numel() for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for row, wave in enumerate(waves):
        batch[row, : wave.numel()] = wave
    feats, frames = FeatureExtractor(
        FeatureConfig(sample_rate=RATE, kind="logmel", n_mels=20, window_ms=20, hop_ms=10)
    )(batch, lengths)
    targets = torch.tensor(pairs) + 1  # class = word + 1, blank = 0
    model = CTCModel(GRU(20, 32, batch_first=True, bidirectional=True), num_tokens=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(120):
        optimizer.zero_grad()
        loss = model.loss(model(feats, frames), frames, targets, torch.full((60,), 2))
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        hyps = decode_batch(model(feats, frames), frames, beam_width=4)
    correct = sum(h.tokens == tuple(t.tolist()) for h, t in zip(hyps, targets, strict=True))
    assert correct >= 54, correct  # 90% of 60 training utterances
