"""Robustness options of the speech wing: silence trimming and loudness normalization (in the
feature extractor, so training and ``recognize`` agree), speed perturbation, and the
waveform augmentation path of the training batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnlab.data.audio import (
    FeatureConfig,
    FeatureExtractor,
    normalize_loudness,
    rms_dbfs,
    speech_bounds,
    speed_perturb,
    trim_silence,
)
from rnnlab.speech import AugmentSettings, FeatureSettings, Utterance, UtteranceBatches
from rnnlab.speech.batching import compute_features, prepare_all


def burst(
    rate: int = 8000, before: int = 2400, size: int = 1600, after: int = 3200
) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float32) / rate
    word = 0.4 * torch.sin(2 * math.pi * 440.0 * t)
    return torch.cat([torch.zeros(before), word, torch.zeros(after)])


def test_speech_bounds_find_the_word_with_margin_and_minimum() -> None:
    x = burst()
    assert speech_bounds(x, 8000, 40.0, margin_ms=0.0) == (2400, 4000)
    assert speech_bounds(x, 8000, 40.0, margin_ms=30.0) == (2160, 4240)
    start, end = speech_bounds(x, 8000, 40.0, margin_ms=0.0, min_samples=3000)
    assert end - start == 3000 and start <= 2400 and end >= 4000
    assert speech_bounds(torch.zeros(500), 8000, 40.0) == (0, 500)  # silence: kept whole
    # faint hiss 60 dB below the word is trimmed at 40 dB, kept at 80 dB
    hiss = x + 4e-4 * torch.randn(x.numel(), generator=torch.Generator().manual_seed(0))
    assert trim_silence(hiss, 8000, 40.0, margin_ms=0.0).numel() == 1600
    assert trim_silence(hiss, 8000, 80.0, margin_ms=0.0).numel() == x.numel()


def test_loudness_normalization_sets_the_rms_level() -> None:
    x = burst()
    for target in (-30.0, -12.0):
        assert rms_dbfs(normalize_loudness(x, target)) == pytest.approx(target, abs=1e-4)
    silent = torch.zeros(100)
    assert normalize_loudness(silent, -20.0) is silent


def test_speed_perturbation_scales_duration_and_pitch() -> None:
    rate, pitch = 8000, 500.0
    t = torch.arange(rate, dtype=torch.float64) / rate
    x = torch.sin(2 * math.pi * pitch * t).float()
    for factor in (0.8, 1.25):
        y = speed_perturb(x, factor)
        assert y.numel() == pytest.approx(rate / factor, abs=2)
        spectrum = np.abs(np.fft.rfft(y.double().numpy()))
        peak_hz = float(np.argmax(spectrum)) * rate / y.numel()
        assert peak_hz == pytest.approx(pitch * factor, rel=0.01)
    assert speed_perturb(x, 1.0) is x
    with pytest.raises(ValueError, match="speed factor"):
        speed_perturb(x, 0.0)


def test_extractor_prepares_alone_and_in_a_batch_alike() -> None:
    config = FeatureSettings(trim_db=40.0, loudness_dbfs=-23.0, deltas=0).feature_config()
    extractor = FeatureExtractor(config)
    a, b = burst(), 0.05 * burst(before=800, after=400)
    alone_a, frames_a = extractor(a)
    trimmed = extractor.prepare(a)
    assert trimmed.numel() == 1600 + 2 * 240 and rms_dbfs(trimmed) == pytest.approx(-23.0, abs=1e-3)
    assert int(frames_a) == config.num_frames(trimmed.numel())
    padded = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
    feats, frames = extractor(padded, torch.tensor([a.numel(), b.numel()]))
    assert int(frames[0]) == int(frames_a)
    torch.testing.assert_close(feats[0, : int(frames_a)], alone_a, atol=1e-4, rtol=1e-4)
    # prepared already: prepare=False leaves the waveform as given
    again, _ = extractor(trimmed, prepare=False)
    torch.testing.assert_close(again, alone_a, atol=1e-5, rtol=1e-5)
    plain = FeatureExtractor(FeatureConfig(sample_rate=8000))
    assert not plain.config.prepares and plain.prepare(a) is a


def burst_utterances() -> tuple[FeatureExtractor, list[torch.Tensor], list[Utterance]]:
    """Four bursts at different offsets: the extractor, their features, and utterances
    holding features, a label and the prepared waveform."""
    extractor = FeatureExtractor(FeatureConfig(sample_rate=8000, n_mfcc=8, n_mels=16))
    waves = prepare_all(extractor, [burst(before=100 * k) for k in range(1, 5)])
    feats = compute_features(extractor, waves)
    items = [Utterance(f, (k % 2,), w) for k, (f, w) in enumerate(zip(feats, waves, strict=True))]
    return extractor, feats, items


def test_waveform_augmentation_changes_train_batches_reproducibly() -> None:
    extractor, feats, items = burst_utterances()
    aug = AugmentSettings(speed=(0.8, 1.25), noise_snr_db=(10.0, 20.0))
    assert aug.waveform and not AugmentSettings().waveform
    loader = UtteranceBatches(items, 4, seed=1, augment=aug, extractor=extractor)
    first, second = next(iter(loader.batches())), next(iter(loader.batches()))
    torch.testing.assert_close(first[0], second[0])  # same seed, epoch, batch: same draw
    plain = [int(f.shape[0]) for f in feats]
    order = loader.order()[:4].tolist()
    assert sorted(first[1].tolist()) != sorted(plain[i] for i in order)  # speeds moved lengths
    with pytest.raises(ValueError, match="needs the feature extractor"):
        UtteranceBatches(items, 4, augment=aug)
    with pytest.raises(ValueError, match=r"0\.5 <= low <= high <= 2"):
        AugmentSettings(speed=(1.2, 1.1))


def test_vtlp_warp_is_monotone_onto_the_band_and_identity_at_one() -> None:
    from rnnlab.data.audio import mel_filterbank, vtlp_frequency

    hz = torch.linspace(0.0, 4000.0, 401, dtype=torch.float64)
    for alpha in (0.8, 0.9, 1.1, 1.25):
        warped = vtlp_frequency(hz, alpha, 4000.0)
        assert float(warped[0]) == 0.0 and float(warped[-1]) == pytest.approx(4000.0)
        assert bool((warped.diff() > 0).all())  # increasing: no two bins swap places
        low = hz < 0.8 * 4000.0 * min(alpha, 1.0) / alpha
        torch.testing.assert_close(warped[low], alpha * hz[low])
    torch.testing.assert_close(vtlp_frequency(hz, 1.0, 4000.0), hz)
    torch.testing.assert_close(
        mel_filterbank(129, 20, 8000, warp=1.0), mel_filterbank(129, 20, 8000)
    )
    with pytest.raises(ValueError, match="warp factor"):
        vtlp_frequency(hz, 0.0, 4000.0)


def test_vtlp_moves_a_tone_to_the_filter_of_the_warped_frequency() -> None:
    # A 1 kHz tone read through warp alpha lands in the mel filter of alpha * 1 kHz, which is
    # what a speaker whose formants sit alpha times higher would give.
    rate = 8000
    t = torch.arange(rate, dtype=torch.float64) / rate
    tone = torch.sin(2 * math.pi * 1000.0 * t).float()
    config = FeatureConfig(sample_rate=rate, kind="logmel", n_mels=40, normalize=False)
    extractor = FeatureExtractor(config)
    centers = mel_to_hz_centers(config)
    for alpha in (0.85, 1.2):
        feats, _ = extractor(tone[None, :], warp=torch.tensor([alpha]))
        loudest = int(feats[0].mean(dim=0).argmax())
        nearest = int((centers - 1000.0 * alpha).abs().argmin())
        assert abs(loudest - nearest) <= 1
    # warp 1 is the plain extractor, and a batch warps each utterance by its own factor
    plain, _ = extractor(tone[None, :])
    same, _ = extractor(tone[None, :], warp=torch.ones(1))
    torch.testing.assert_close(same, plain)
    both, _ = extractor(torch.stack([tone, tone]), warp=torch.tensor([1.0, 1.2]))
    torch.testing.assert_close(both[0], plain[0])
    assert not torch.allclose(both[1], plain[0])
    with pytest.raises(ValueError, match="warp must be 2 factors"):
        extractor(torch.stack([tone, tone]), warp=torch.ones(3))


def mel_to_hz_centers(config: FeatureConfig) -> torch.Tensor:
    """Center frequency of each mel filter of ``config`` (the peak of its triangle)."""
    from rnnlab.data.audio import hz_to_mel, mel_to_hz

    top = hz_to_mel(torch.tensor(config.sample_rate / 2, dtype=torch.float64))
    edges = mel_to_hz(torch.linspace(0.0, float(top), config.n_mels + 2, dtype=torch.float64))
    return edges[1:-1]


def test_vtlp_augment_changes_features_not_lengths_reproducibly() -> None:
    extractor, feats, items = burst_utterances()
    aug = AugmentSettings(vtlp=(0.85, 1.15))
    assert aug.waveform
    loader = UtteranceBatches(items, 4, seed=1, augment=aug, extractor=extractor)
    first, second = next(iter(loader.batches())), next(iter(loader.batches()))
    torch.testing.assert_close(first[0], second[0])
    order = loader.order()[:4].tolist()
    assert first[1].tolist() == [int(feats[i].shape[0]) for i in order]  # no tempo change
    plain = torch.nn.utils.rnn.pad_sequence([feats[i] for i in order], batch_first=True)
    assert not torch.allclose(first[0], plain, atol=1e-3)
    with pytest.raises(ValueError, match=r"0\.7 <= low <= high <= 1\.4"):
        AugmentSettings(vtlp=(0.5, 1.0))
