"""Screening before recognition: the peak level, the -60 dBFS silence rule on both sides, and
recordings shorter than one feature window."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from rnnlab.data.audio import Audio, AudioError, FeatureConfig, peak_dbfs
from rnnlab.speech.screening import SILENCE_PEAK_DBFS, check_length, silence_notice

RATE = 8000


def tone(peak_db: float, seconds: float = 0.5, dc: float = 0.0) -> torch.Tensor:
    t = torch.arange(round(RATE * seconds), dtype=torch.float64) / RATE
    return (10 ** (peak_db / 20) * torch.sin(2 * math.pi * 440.0 * t) + dc).float()


def audio(samples: torch.Tensor, name: str = "x.wav") -> Audio:
    return Audio(samples=samples, sample_rate=RATE, path=Path(name))


def test_peak_dbfs() -> None:
    assert peak_dbfs(torch.zeros(100)) == -math.inf
    assert peak_dbfs(torch.zeros(0)) == -math.inf
    assert peak_dbfs(tone(0.0)) == pytest.approx(0.0, abs=0.01)
    assert peak_dbfs(tone(-40.0)) == pytest.approx(-40.0, abs=0.01)
    # a constant offset is not signal, unless asked
    assert peak_dbfs(torch.full((100,), 0.5)) == -math.inf
    assert peak_dbfs(torch.full((100,), 0.5), remove_dc=False) == pytest.approx(-6.02, abs=0.01)


@pytest.mark.parametrize(
    ("samples", "peak"),
    [
        (torch.zeros(RATE), "-inf"),
        (tone(-70.0), "-70.0"),
        (tone(-61.0), "-61.0"),
        (tone(-75.0, dc=0.2), "-75.0"),  # a DC bias does not hide silence
        (1e-4 * (2 * torch.rand(RATE, generator=torch.Generator().manual_seed(0)) - 1), "-80.0"),
    ],
)
def test_silent_recordings_get_the_notice(samples: torch.Tensor, peak: str) -> None:
    notice = silence_notice(audio(samples, "silent.wav"))
    assert notice is not None and notice.startswith("no speech found in silent.wav (peak ")
    assert f"peak {peak} dBFS" in notice and "-60 dBFS" in notice


@pytest.mark.parametrize("peak_db", [-59.0, -40.0, -20.0, 0.0])
def test_quiet_but_real_recordings_pass(peak_db: float) -> None:
    assert SILENCE_PEAK_DBFS == -60.0
    assert silence_notice(audio(tone(peak_db))) is None


def test_a_word_in_long_silence_is_not_silent() -> None:
    samples = torch.zeros(5 * RATE)
    samples[RATE : RATE + 800] = tone(-40.0, seconds=0.1)
    assert silence_notice(audio(samples)) is None


def test_the_threshold_is_a_parameter() -> None:
    assert silence_notice(audio(tone(-50.0)), threshold_dbfs=-45.0) is not None


def test_shorter_than_one_window_is_a_one_line_error() -> None:
    config = FeatureConfig(sample_rate=RATE)  # 25 ms: 200 samples
    check_length(audio(torch.zeros(config.win_length)), config)
    for size, unit in ((config.win_length - 1, "199 samples"), (1, "1 sample ")):
        with pytest.raises(AudioError) as info:
            check_length(audio(torch.zeros(size), "blip.wav"), config)
        message = str(info.value)
        assert message.startswith(f"blip.wav: the recording is {unit}")
        assert "shorter than one feature window (200 samples, 25 ms)" in message
        assert "\n" not in message
