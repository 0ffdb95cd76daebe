"""Audio I/O, features (against librosa as an independent reference) and augmentation."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from rnnlab.data.audio import (
    AudioConversionWarning,
    AudioError,
    FeatureConfig,
    FeatureExtractor,
    add_noise,
    dct_matrix,
    deltas,
    load_audio,
    normalize_utterance,
    pre_emphasis,
    resample,
    spec_augment,
)
from rnnlab.data.audio.io import WAV_CODECS, audio_container, wav_format_tag


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1.0 / rate)[int(np.argmax(spectrum))])


def speechlike(rate: int = 8000, seconds: float = 0.7, seed: int = 0) -> np.ndarray:
    """Two tones (one gliding) plus a little noise: energy in many mel bands."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    y = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1250 * t * (1 + 0.2 * t))
    return (y + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


# ------------------------------------------------------------------------------------ I/O


def test_wav_at_the_wanted_rate_loads_without_notice(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    signal = tone(440, 0.5, 8000)
    sf.write(path, signal, 8000, subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audio = load_audio(path, sample_rate=8000)
    assert audio.notices == ()
    assert audio.sample_rate == 8000 and audio.samples.dtype == torch.float32
    assert audio.samples.shape == (4000,)
    assert np.abs(audio.samples.numpy() - signal).max() < 1e-4  # 16-bit quantization
    assert audio.seconds == pytest.approx(0.5)


def test_stereo_44k1_is_mixed_and_resampled_with_notices(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left, right = tone(1000, 1.0, 44100), tone(1000, 1.0, 44100, amplitude=0.3)
    sf.write(path, np.stack([left, right], axis=1), 44100)
    with pytest.warns(AudioConversionWarning) as record:
        audio = load_audio(path, sample_rate=16000)
    messages = [str(w.message) for w in record]
    assert any("mixed 2 channels to mono" in m for m in messages)
    assert any("resampled from 44100 Hz to 16000 Hz" in m for m in messages)
    assert len(audio.notices) == 2
    assert audio.samples.shape == (16000,)
    # FFT resolution is 1 Hz over one second: the tone stays at 1000 Hz.
    assert abs(peak_hz(audio.samples.numpy(), 16000) - 1000.0) <= 1.0
    # the mix is the mean of the channels: amplitude 0.4
    assert float(audio.samples[2000:-2000].abs().max()) == pytest.approx(0.4, abs=0.01)


def test_warn_false_keeps_notices_without_warning(tmp_path: Path) -> None:
    path = tmp_path / "a.flac"
    sf.write(path, tone(300, 0.25, 16000), 16000, format="FLAC")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audio = load_audio(path, sample_rate=8000, warn=False)
    assert audio.notices == ("a.flac: resampled from 16000 Hz to 8000 Hz",)
    assert audio.samples.shape == (2000,)


@pytest.mark.parametrize(
    ("rate_in", "rate_out", "freq"), [(8000, 16000, 1234.0), (16000, 8000, 700.0)]
)
def test_resampling_preserves_a_tone_frequency(rate_in: int, rate_out: int, freq: float) -> None:
    out = resample(tone(freq, 2.0, rate_in), rate_in, rate_out)
    assert out.shape == (2 * rate_out,)
    assert abs(peak_hz(out, rate_out) - freq) <= 0.5  # 0.5 Hz bins over two seconds


def test_resampling_removes_content_above_the_new_nyquist() -> None:
    out = resample(tone(3500, 1.0, 16000), 16000, 4000)  # 3500 Hz > 2000 Hz Nyquist
    assert np.sqrt(np.mean(out[200:-200] ** 2)) < 0.01  # would alias to 500 Hz otherwise


def test_missing_empty_and_non_audio_files_raise_audio_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not a recording\n" * 20)
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    for path, words in [
        (tmp_path / "missing.wav", "no such audio file"),
        (empty, "empty"),
        (text, "not a readable audio file"),
        (garbage, "not a readable audio file"),
    ]:
        with pytest.raises(AudioError, match=words) as info:
            load_audio(path)
        assert path.name in str(info.value)
        assert isinstance(info.value, ValueError)


def test_zero_frame_recording_raises(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(AudioError, match=r"silent\.wav: the recording has no samples"):
        load_audio(path)


def test_recording_longer_than_the_maximum_raises(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, tone(440, 3.0, 8000), 8000)
    with pytest.raises(AudioError, match=r"long\.wav: recording is 3\.000 s long.*max_seconds=2"):
        load_audio(path, max_seconds=2)
    assert load_audio(path, max_seconds=3.0).samples.numel() == 24000


def test_non_finite_samples_raise(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    data = tone(440, 0.1, 8000)
    data[10] = np.nan
    sf.write(path, data, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(path)


# ------------------------------------------------------------------------------- features

# librosa is the independent reference, installed for the tests only. Its conventions are
# matched by parameters: Hann window (periodic), centered frames with zero padding, power
# spectrum, and either Slaney mel scale + Slaney (unit-area) filters + 10 log10 (dB, top_db
# off), or HTK mel scale + peak-1 filters + natural log. Float32 torch against float32/64
# librosa: agreement to 1e-3 (dB or nepers) on values of magnitude up to ~130.
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def librosa() -> Any:
    """librosa, or skip the reference comparisons when it is not installed."""
    return pytest.importorskip("librosa")


def _librosa_mel(
    librosa: Any, y: np.ndarray, cfg: FeatureConfig, htk: bool, norm: str | None
) -> np.ndarray:
    return np.asarray(
        librosa.feature.melspectrogram(
            y=y,
            sr=cfg.sample_rate,
            n_fft=cfg.fft_size,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=cfg.window,
            center=True,
            pad_mode="constant",
            power=2.0,
            n_mels=cfg.n_mels,
            htk=htk,
            norm=norm,
        )
    )  # (M, T)


SLANEY_DB = FeatureConfig(
    sample_rate=8000,
    kind="logmel",
    n_fft=256,
    window="hann",
    n_mels=40,
    mel_scale="slaney",
    mel_norm="slaney",
    log="db",
    pre_emphasis=None,
    normalize=False,
)


def test_log_mel_matches_librosa_slaney_db(librosa: Any) -> None:
    y = speechlike()
    ours, frames = FeatureExtractor(SLANEY_DB)(torch.from_numpy(y))
    ref = librosa.power_to_db(
        _librosa_mel(librosa, y, SLANEY_DB, htk=False, norm="slaney"), top_db=None
    )
    assert ours.shape == ref.T.shape == (71, 40) and int(frames) == 71
    np.testing.assert_allclose(ours.numpy(), ref.T, atol=TOLERANCE, rtol=0)


def test_log_mel_matches_librosa_htk_natural_log_hamming(librosa: Any) -> None:
    cfg = dataclasses.replace(
        SLANEY_DB, mel_scale="htk", mel_norm=None, log="natural", window="hamming", f_min=60.0
    )
    y = speechlike(seed=1)
    ours, _ = FeatureExtractor(cfg)(torch.from_numpy(y))
    mel = librosa.feature.melspectrogram(
        y=y, sr=8000, n_fft=256, hop_length=80, win_length=200, window="hamming",
        pad_mode="constant", power=2.0, n_mels=40, htk=True, norm=None, fmin=60.0,
    )  # fmt: skip
    np.testing.assert_allclose(ours.numpy(), np.log(np.maximum(mel, 1e-10)).T, atol=TOLERANCE)


def test_mfcc_and_deltas_match_librosa(librosa: Any) -> None:
    cfg = dataclasses.replace(SLANEY_DB, kind="mfcc", n_mfcc=13, deltas=2, delta_width=3)
    y = speechlike(seed=2)
    ours, _ = FeatureExtractor(cfg)(torch.from_numpy(y))
    log_mel = librosa.power_to_db(
        _librosa_mel(librosa, y, cfg, htk=False, norm="slaney"), top_db=None
    )
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=13, dct_type=2, norm="ortho")  # (13, T)
    # librosa's delta is a Savitzky-Golay slope (order 1): the regression formula;
    # mode="nearest" replicates the edge frames as ours does.
    d1 = librosa.feature.delta(mfcc, width=7, mode="nearest")
    d2 = librosa.feature.delta(d1, width=7, mode="nearest")
    assert ours.shape == (mfcc.shape[1], 39)
    np.testing.assert_allclose(ours[:, :13].numpy(), mfcc.T, atol=TOLERANCE)
    np.testing.assert_allclose(ours[:, 13:26].numpy(), d1.T, atol=TOLERANCE)
    np.testing.assert_allclose(ours[:, 26:].numpy(), d2.T, atol=TOLERANCE)


def test_dct_is_orthonormal() -> None:
    d = dct_matrix(24, 24)
    torch.testing.assert_close(d @ d.T, torch.eye(24, dtype=torch.float64))


def test_pre_emphasis_formula_and_padding() -> None:
    x = torch.tensor([[1.0, 2.0, 4.0, 0.0], [3.0, 1.0, 0.0, 0.0]])
    y = pre_emphasis(x, 0.5, lengths=torch.tensor([3, 2]))
    torch.testing.assert_close(y, torch.tensor([[1.0, 1.5, 3.0, 0.0], [3.0, -0.5, 0.0, 0.0]]))


def test_a_padded_batch_gives_each_utterance_its_own_features() -> None:
    cfg = FeatureConfig(sample_rate=8000, deltas=2)  # pre-emphasis, Hamming, CMVN on
    extractor = FeatureExtractor(cfg)
    a, b = torch.from_numpy(speechlike(seed=3)), torch.from_numpy(speechlike(seconds=0.33, seed=4))
    batch = torch.zeros(2, a.numel())
    batch[0], batch[1, : b.numel()] = a, b
    feats, frames = extractor(batch, lengths=torch.tensor([a.numel(), b.numel()]))
    alone_b, frames_b = extractor(b)
    assert frames.tolist() == [cfg.num_frames(a.numel()), cfg.num_frames(b.numel())]
    assert int(frames_b) == int(frames[1]) == 1 + b.numel() // 80
    torch.testing.assert_close(feats[1, : int(frames_b)], alone_b, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(feats[0], extractor(a)[0], atol=1e-4, rtol=1e-4)
    assert feats[1, int(frames_b) :].abs().max() == 0


def test_normalization_gives_zero_mean_unit_variance_over_valid_frames() -> None:
    x = torch.randn(2, 30, 5) * 3 + 7
    out = normalize_utterance(x, lengths=torch.tensor([30, 12]))
    for row, n in [(0, 30), (1, 12)]:
        valid = out[row, :n]
        torch.testing.assert_close(valid.mean(0), torch.zeros(5), atol=1e-5, rtol=0)
        torch.testing.assert_close(valid.std(0, unbiased=False), torch.ones(5), atol=1e-4, rtol=0)
    assert out[1, 12:].abs().max() == 0


def test_deltas_of_a_ramp_are_its_slope_inside_and_respect_lengths() -> None:
    ramp = torch.arange(20.0)[:, None] * 2.0  # slope 2
    d = deltas(ramp, width=2)
    torch.testing.assert_close(d[2:-2], torch.full((16, 1), 2.0))
    padded = torch.zeros(1, 25, 1)
    padded[0, :20] = ramp
    torch.testing.assert_close(deltas(padded, 2, lengths=torch.tensor([20]))[0, :20], d)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("n_mfcc", 50, "n_mfcc must be in"),
        ("kind", "spectrogram", "kind must be"),
        ("f_max", 6000.0, "f_max <= sample_rate/2"),
        ("n_fft", 64, "shorter than the window"),
        ("deltas", 3, "deltas must be 0, 1 or 2"),
        ("pre_emphasis", 1.5, "pre_emphasis must be in"),
    ],
)
def test_bad_feature_settings_are_named(field: str, value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        FeatureConfig(sample_rate=8000, **{field: value})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- augmentation


def test_spec_augment_is_off_at_evaluation_and_seeded_in_training() -> None:
    x = torch.randn(3, 80, 40)
    assert spec_augment(x, training=False) is x
    kwargs = {"freq_masks": 2, "freq_width": 6, "time_masks": 2, "time_width": 10}
    y1 = spec_augment(x, training=True, generator=torch.Generator().manual_seed(1), **kwargs)
    y2 = spec_augment(x, training=True, generator=torch.Generator().manual_seed(1), **kwargs)
    torch.testing.assert_close(y1, y2)
    masked = y1 == 0
    assert masked.any()
    full_channels = masked.all(dim=1).sum(dim=1)  # channels masked at every frame, per utterance
    assert int(full_channels.max()) <= 2 * 6
    full_frames = masked.all(dim=2).sum(dim=1)
    assert int(full_frames.max()) <= 2 * 10
    torch.testing.assert_close(y1[~masked], x[~masked])


def test_spec_augment_time_masks_stay_inside_lengths() -> None:
    x = torch.ones(4, 50, 8)
    lengths = torch.tensor([50, 30, 20, 10])
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        y = spec_augment(x, training=True, freq_masks=0, time_masks=3, time_width=40,
                         max_time_fraction=0.5, lengths=lengths, generator=gen)  # fmt: skip
        for row, n in enumerate(lengths.tolist()):
            assert (y[row, n:] == 1).all()
            assert int((y[row, :n, 0] == 0).sum()) <= 3 * (n // 2)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_add_noise_reaches_the_requested_snr(snr_db: float) -> None:
    clean = torch.from_numpy(np.stack([tone(500, 0.5, 8000), tone(900, 0.5, 8000, 0.1)]))
    lengths = torch.tensor([4000, 3000])
    clean[1, 3000:] = 0
    noisy = add_noise(clean, snr_db, training=True, lengths=lengths,
                      generator=torch.Generator().manual_seed(0))  # fmt: skip
    for row, n in enumerate(lengths.tolist()):
        noise = noisy[row, :n] - clean[row, :n]
        measured = 10 * math.log10(float(clean[row, :n].pow(2).mean() / noise.pow(2).mean()))
        assert measured == pytest.approx(snr_db, abs=1e-3)
    assert noisy[1, 3000:].abs().max() == 0
    assert add_noise(clean, snr_db, training=False) is clean


def test_add_noise_with_a_noise_recording_and_a_range() -> None:
    clean = torch.from_numpy(tone(440, 0.5, 8000))
    hum = torch.from_numpy(tone(50, 0.1, 8000))  # tiled to the signal's length
    gen = torch.Generator().manual_seed(3)
    noisy = add_noise(clean, (5.0, 15.0), training=True, noise=hum, generator=gen)
    snr = 10 * math.log10(float(clean.pow(2).mean() / (noisy - clean).pow(2).mean()))
    assert 5.0 <= snr <= 15.0
    with pytest.raises(ValueError, match="low <= high"):
        add_noise(clean, (10.0, 5.0), training=True)


@pytest.mark.parametrize(
    ("head", "accepted"),
    [
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", False),  # MP3: never handed to libsndfile
        (b"\xff\xfb\x90\x64" + bytes(8), False),  # an MPEG frame header
        (b"RIFF\x10\x00\x00\x00AVI ", False),  # RIFF, but not WAVE
        (b"fLaC\x00\x00\x00\x22", True),
        (b"OggS\x00\x02" + bytes(6), True),
        (b"FORM\x00\x00\x00\x00AIFF", True),
    ],
)
def test_only_known_containers_reach_libsndfile(
    tmp_path: Path, head: bytes, accepted: bool
) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(head + bytes(range(256)) * 8)
    assert (audio_container(path) is not None) is accepted
    if not accepted:
        with pytest.raises(AudioError, match="no WAV, FLAC, Ogg or AIFF header"):
            load_audio(path)


def test_every_written_format_is_a_known_container(tmp_path: Path) -> None:
    tone = np.sin(np.linspace(0, 200, 800)).astype(np.float32)
    for suffix, subtype in [(".wav", "PCM_16"), (".flac", "PCM_16"), (".ogg", "VORBIS")]:
        path = tmp_path / f"t{suffix}"
        sf.write(path, tone, 8000, subtype=subtype)
        assert audio_container(path) is not None
        assert load_audio(path).samples.numel() > 0


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT", "ULAW", "ALAW", "IMA_ADPCM"])
def test_wav_codecs_rnnlab_reads_are_recognized(tmp_path: Path, subtype: str) -> None:
    path = tmp_path / "t.wav"
    sf.write(path, np.sin(np.linspace(0, 50, 2000)).astype(np.float32), 8000, subtype=subtype)
    assert wav_format_tag(path) in WAV_CODECS
    assert load_audio(path).samples.numel() > 0


def test_mpeg_inside_wav_never_reaches_libsndfile(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    sf.write(path, np.zeros(800, dtype=np.float32), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    fmt = data.index(b"fmt ")
    data[fmt + 8 : fmt + 10] = (0x0055).to_bytes(2, "little")  # WAVE_FORMAT_MPEGLAYER3
    path.write_bytes(bytes(data))
    assert wav_format_tag(path) == 0x0055
    with pytest.raises(AudioError, match="WAV codec 0x0055"):
        load_audio(path)
