"""Streaming: chunked features equal the offline ones, and a unidirectional model streamed
chunk by chunk gives the whole-utterance transcript (and log-probabilities)."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.data.audio import FeatureConfig, FeatureExtractor
from rnnlab.errors import ConfigError
from rnnlab.models import SequenceModel
from rnnlab.speech.ctc import ctc_greedy_decode
from rnnlab.speech.model import CTCHead
from rnnlab.speech.sentences_features import StreamingFeatures, stack_frames, stacked_lengths
from rnnlab.speech.streaming import StreamingRecognizer, latency_summary
from rnnlab.speech.units import TextUnits

CFG = FeatureConfig(sample_rate=8000, kind="logmel", n_mels=16, deltas=0, normalize=False)


@pytest.mark.parametrize("samples", [150, 200, 201, 3999])
@pytest.mark.parametrize("chunk", [1, 77, 80, 1000])
def test_streamed_features_equal_offline(samples: int, chunk: int) -> None:
    wave = torch.randn(samples, generator=torch.Generator().manual_seed(samples))
    stream = StreamingFeatures(CFG)
    parts = [stream.push(wave[i : i + chunk]) for i in range(0, samples, chunk)]
    online = torch.cat([*parts, stream.finish()])
    offline, frames = FeatureExtractor(CFG)(wave)
    assert online.shape == offline.shape and online.shape[0] == int(frames)
    torch.testing.assert_close(online, offline, atol=1e-4, rtol=1e-4)


def test_stacking_pads_the_last_step() -> None:
    x = torch.arange(14.0).reshape(7, 2)
    y = stack_frames(x, 3)
    assert y.shape == (3, 6) and y[2].tolist() == [12.0, 13.0, 0.0, 0.0, 0.0, 0.0]
    assert stacked_lengths(torch.tensor([7, 6, 1]), 3).tolist() == [3, 2, 1]
    assert stack_frames(x, 1) is x


def test_lookahead_features_are_refused() -> None:
    with pytest.raises(ConfigError, match="normalize = false"):
        StreamingFeatures(FeatureConfig(sample_rate=8000, kind="logmel", deltas=0))
    with pytest.raises(ConfigError, match="deltas"):
        StreamingFeatures(FeatureConfig(sample_rate=8000, kind="logmel", deltas=1, normalize=False))


def model(bidirectional: bool = False, stack: int = 2) -> SequenceModel:
    torch.manual_seed(0)
    units = TextUnits.characters()
    lstm = rnnlab.LSTM(8, 24, num_layers=2, batch_first=True, bidirectional=bidirectional)
    encoder = torch.nn.Linear(16 * stack, 8)
    with torch.no_grad():  # centre the raw log-mels (about 4) so the LSTM does not saturate
        encoder.weight.normal_(0.0, 0.5)
        encoder.bias.copy_(-4.0 * encoder.weight.sum(dim=1))
    width = 48 if bidirectional else 24
    head = CTCHead(width, units.num_classes)
    with torch.no_grad():  # sharp, varied outputs: many distinct tokens
        head.proj.weight.normal_(0.0, 3.0)
        head.proj.bias.zero_()
    return SequenceModel(encoder, lstm, head).eval()


@pytest.mark.parametrize("chunk_ms", [10.0, 65.0, 250.0])
def test_streaming_transcript_equals_offline(chunk_ms: float) -> None:
    units, stack = TextUnits.characters(), 2
    net = model(stack=stack)
    # random weights: log-probs near uniform, so any difference would change the argmax
    generator = torch.Generator().manual_seed(1)
    t = torch.arange(750) / 8000
    pitches = (200 + 3600 * torch.rand(8, generator=generator)).tolist()
    wave = torch.cat([torch.sin(2 * torch.pi * p * t) for p in pitches])  # 8 tones
    wave = torch.cat([wave, 0.01 * torch.randn(1, generator=generator)])  # an odd length
    features, _ = FeatureExtractor(CFG)(wave)
    x = stack_frames(features, stack).unsqueeze(0)
    with torch.no_grad():
        offline, _ = net(x, torch.tensor([x.shape[1]]))
    expected = ctc_greedy_decode(offline[0])
    stream = StreamingRecognizer(net, CFG, stack, units)
    size = int(chunk_ms * 8)
    for begin in range(0, wave.numel(), size):
        stream.push(wave[begin : begin + size])
    result = stream.finish()
    assert result.tokens == expected.tokens and len(expected.tokens) >= 3
    assert result.text == units.decode(expected.tokens)
    torch.testing.assert_close(result.log_probs, offline[0], atol=1e-4, rtol=1e-4)
    summary = latency_summary(result.latencies)
    assert summary["chunks"] == len(result.latencies) > 1
    assert 0 < summary["median_ms"] <= summary["p95_ms"]
    stream.reset()
    assert stream.text == "" and stream.finish().tokens == ()


def test_bidirectional_model_is_refused() -> None:
    with pytest.raises(ConfigError, match="unidirectional"):
        StreamingRecognizer(model(bidirectional=True), CFG, 2, TextUnits.characters())
