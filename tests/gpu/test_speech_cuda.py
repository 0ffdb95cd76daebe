"""On a CUDA device: speech features, augmentation and models on the GPU against the CPU.

Skipped without CUDA. The checks of the former ``benchmarks/speech_gpu_check.py`` (its
throughput measurement is ``benchmarks/speech_feature_throughput.py``): the GPU gives the
CPU's numbers for the feature pipeline (two conventions, same frame counts), the classifiers
and the CTC model (log-probabilities, loss and gradients); augmentation and beam decoding
accept GPU tensors. No audio files: the utterances are generated chirps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor, nn

from rnnlab import GRU, LSTM
from rnnlab.data.audio import FeatureConfig, FeatureExtractor, add_noise, spec_augment
from rnnlab.speech import decode_batch
from rnnlab.speech.model import CTCModel, SpeechClassifier

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TOL = 1e-3  # float32, TF32 off: FFT and matmul sum in different orders on the two devices
RATE = 8000
DEVICE = "cuda"
CONFIGS = {
    "mfcc+deltas+cmvn (htk)": FeatureConfig(sample_rate=RATE, deltas=2),
    "logmel dB (slaney)": FeatureConfig(
        sample_rate=RATE, kind="logmel", window="hann", n_fft=256, mel_scale="slaney",
        mel_norm="slaney", log="db", pre_emphasis=None, normalize=False,
    ),
}  # fmt: skip


@pytest.fixture(autouse=True)
def _no_tf32() -> Iterator[None]:
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _utterances(count: int = 32, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Padded batch of noisy chirps, 0.15-2.3 s long."""
    gen = torch.Generator().manual_seed(seed)
    lengths = (RATE * torch.linspace(0.15, 2.3, count)).long()
    batch = torch.zeros(count, int(lengths.max()))
    for row, n in enumerate(lengths.tolist()):
        t = torch.arange(n) / RATE
        f0 = 200 + 600 * float(torch.rand(1, generator=gen))
        chirp = 0.4 * torch.sin(2 * math.pi * f0 * t * (1 + t))
        batch[row, :n] = chirp + 0.02 * torch.randn(n, generator=gen)
    return batch, lengths


def _features() -> tuple[Tensor, Tensor]:
    waves, lengths = _utterances()
    feats, frames = FeatureExtractor(CONFIGS["mfcc+deltas+cmvn (htk)"])(waves, lengths)
    return feats, frames


@pytest.mark.parametrize("name", list(CONFIGS))
def test_features_match_the_cpu(name: str) -> None:
    config = CONFIGS[name]
    waves, lengths = _utterances()
    cpu, cpu_frames = FeatureExtractor(config)(waves, lengths)
    gpu, gpu_frames = FeatureExtractor(config).to(DEVICE)(waves.to(DEVICE), lengths.to(DEVICE))
    assert gpu.device.type == "cuda"
    assert float((gpu.cpu() - cpu).abs().max()) <= TOL
    assert torch.equal(gpu_frames.cpu(), cpu_frames)


def test_augmentation_accepts_gpu_tensors() -> None:
    waves, lengths = _utterances()
    feats, frames = _features()
    gen = torch.Generator().manual_seed(0)
    masked = spec_augment(feats.to(DEVICE), training=True, lengths=frames, generator=gen)
    noisy = add_noise(waves.to(DEVICE), 10.0, training=True, lengths=lengths, generator=gen)
    assert masked.device.type == "cuda" and noisy.device.type == "cuda"


CLASSIFIERS: dict[str, Callable[[], nn.Module]] = {
    "gru-bi-mean": lambda: SpeechClassifier(GRU(39, 32, batch_first=True, bidirectional=True), 10),
    "lstm-last": lambda: SpeechClassifier(LSTM(39, 32, batch_first=True), 10, "last"),
}


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifiers_match_the_cpu(name: str) -> None:
    torch.manual_seed(0)
    feats, frames = _features()
    cpu_model = CLASSIFIERS[name]()
    gpu_model = CLASSIFIERS[name]().to(DEVICE)
    gpu_model.load_state_dict(cpu_model.state_dict())
    out_cpu = cpu_model(feats, frames)
    out_gpu = gpu_model(feats.to(DEVICE), frames)
    assert float((out_gpu.detach().cpu() - out_cpu.detach()).abs().max()) <= TOL


def test_ctc_model_matches_the_cpu_and_decodes_on_the_gpu() -> None:
    torch.manual_seed(0)
    feats, frames = _features()
    targets = torch.randint(1, 11, (32, 3))
    ctc_cpu = CTCModel(GRU(39, 32, batch_first=True, bidirectional=True), num_tokens=10)
    ctc_gpu = CTCModel(GRU(39, 32, batch_first=True, bidirectional=True), num_tokens=10)
    ctc_gpu = ctc_gpu.to(DEVICE)
    ctc_gpu.load_state_dict(ctc_cpu.state_dict())
    results = []
    for model, dev in [(ctc_cpu, "cpu"), (ctc_gpu, DEVICE)]:
        log_probs = model(feats.to(dev), frames)
        loss = model.loss(log_probs, frames.to(dev), targets.to(dev), torch.full((32,), 3).to(dev))
        loss.backward()
        results.append((log_probs, loss))
    (cpu_lp, cpu_loss), (gpu_lp, gpu_loss) = results
    assert float((gpu_lp.detach().cpu() - cpu_lp.detach()).abs().max()) <= TOL
    assert abs(float(gpu_loss.detach()) - float(cpu_loss.detach())) <= TOL
    for a, b in zip(ctc_gpu.parameters(), ctc_cpu.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        assert float((a.grad.cpu() - b.grad).abs().max()) <= TOL
    hypotheses = decode_batch(gpu_lp, frames, beam_width=4)
    assert len(hypotheses) == 32
