"""FSDD: names, the official split, the connected-digit builder (on generated files), and the
real recordings when the shared data folder is present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rnnlab.data.audio import load_audio
from rnnlab.data.fsdd import (
    FsddSplit,
    Recording,
    build_connected_digits,
    connected_digit_corpus,
    list_recordings,
    parse_recording_name,
    split_recordings,
)

SPEAKERS = ("ann", "bob")
DIGITS = (1, 4, 7)
INDICES = range(12)


@pytest.fixture(scope="module")
def fake_fsdd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small FSDD look-alike: 2 speakers x 3 digits x 12 indices of short distinct tones."""
    root = tmp_path_factory.mktemp("fsdd")
    folder = root / "recordings"
    folder.mkdir()
    for s, speaker in enumerate(SPEAKERS):
        for digit in DIGITS:
            for index in INDICES:
                n = 400 + 40 * index + 7 * s  # every file a different length
                t = np.arange(n) / 8000
                wave = 0.3 * np.sin(2 * np.pi * (300 + 100 * digit) * t)
                sf.write(folder / f"{digit}_{speaker}_{index}.wav", wave, 8000, subtype="PCM_16")
    return root


def fsdd_folder() -> Path | None:
    """The shared FSDD copy beside or inside the repository, if present."""
    repo = Path(__file__).resolve().parents[2]
    candidates = [Path(p) for p in [os.environ.get("RNNLAB_FSDD_DIR", "")] if p]
    candidates += [repo / "shared" / "data" / "fsdd", repo.parent / "shared" / "data" / "fsdd"]
    for path in candidates:
        if (path / "recordings").is_dir():
            return path
    return None


def test_names_parse_and_misnamed_files_are_named(tmp_path: Path) -> None:
    rec = parse_recording_name("/x/7_theo_32.wav")
    assert (rec.digit, rec.speaker, rec.index) == (7, "theo", 32)
    with pytest.raises(ValueError, match=r"theo_7\.wav: not an FSDD recording name"):
        parse_recording_name("theo_7.wav")
    with pytest.raises(ValueError, match=r"no \.wav recordings"):
        list_recordings(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        list_recordings(tmp_path / "nowhere")


def test_listing_accepts_the_root_or_the_recordings_folder(fake_fsdd: Path) -> None:
    recs = list_recordings(fake_fsdd)
    assert len(recs) == len(SPEAKERS) * len(DIGITS) * len(INDICES)
    assert recs == sorted(recs) and recs == list_recordings(fake_fsdd / "recordings")


def _check_disjoint(split: FsddSplit, total: int) -> None:
    paths = {name: {r.path for r in part} for name, part in split.parts().items()}
    assert not paths["train"] & paths["test"]
    assert not paths["valid"] & paths["test"]
    assert not paths["train"] & paths["valid"]
    assert sum(len(p) for p in paths.values()) == total


def test_split_is_official_and_disjoint(fake_fsdd: Path) -> None:
    recs = list_recordings(fake_fsdd)
    split = split_recordings(recs)
    _check_disjoint(split, len(recs))
    assert {r.index for r in split.test} == set(range(5))
    assert {r.index for r in split.valid} == set(range(5, 10))
    assert {r.index for r in split.train} == {10, 11}
    no_valid = split_recordings(recs, valid_indices=())
    assert not no_valid.valid and len(no_valid.train) == len(split.train) + len(split.valid)
    with pytest.raises(ValueError, match=r"valid_indices \[3, 4\] are test indices"):
        split_recordings(recs, valid_indices=range(3, 8))


def test_connected_digits_keep_boundaries_and_one_speaker(fake_fsdd: Path) -> None:
    recs = list_recordings(fake_fsdd)
    utterances = build_connected_digits(recs, 30, seed=0, silence_ms=(20.0, 60.0))
    assert {len(u.digits) for u in utterances} <= set(range(1, 8))
    assert len({len(u.digits) for u in utterances}) > 3  # lengths vary
    by_name = {r.path.name: r for r in recs}
    for u in utterances:
        assert {by_name[s.source].speaker for s in u.segments} == {u.speaker}
        assert len({s.source for s in u.segments}) == len(u.segments)  # no file twice
        previous_end = 0
        for seg in u.segments:
            source = load_audio(by_name[seg.source].path).samples
            torch.testing.assert_close(u.samples[seg.start : seg.end], source)
            gap = seg.start - previous_end
            assert 160 <= gap <= 480  # 20-60 ms at 8 kHz
            assert u.samples[previous_end : seg.start].abs().max() == 0
            previous_end = seg.end
        assert 160 <= u.samples.numel() - previous_end <= 480
        assert u.text.split() == [
            ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][d]
            for d in u.digits
        ]
        digit, start, end = u.boundaries()[0]
        assert digit == u.digits[0] and start == u.segments[0].start / 8000 and end > start


def test_connected_digits_are_deterministic_given_a_seed(fake_fsdd: Path) -> None:
    recs = list_recordings(fake_fsdd)
    a = build_connected_digits(recs, 10, seed=7)
    b = build_connected_digits(recs, 10, seed=7)
    c = build_connected_digits(recs, 10, seed=8)
    assert [u.segments for u in a] == [u.segments for u in b]
    assert all(torch.equal(x.samples, y.samples) for x, y in zip(a, b, strict=True))
    assert [u.segments for u in a] != [u.segments for u in c]


def test_corpus_parts_use_only_their_own_recordings(fake_fsdd: Path) -> None:
    split = split_recordings(list_recordings(fake_fsdd))
    corpus = connected_digit_corpus(
        split, {"train": 20, "valid": 5, "test": 10}, seed=1, max_digits=4
    )
    for name, part in split.parts().items():
        allowed = {r.path.name for r in part}
        used = {s.source for u in corpus[name] for s in u.segments}
        assert used <= allowed, name
    with pytest.raises(ValueError, match="unknown split part 'dev'"):
        connected_digit_corpus(split, {"dev": 1}, seed=0)
    with pytest.raises(ValueError, match="fewer than max_digits=7"):
        build_connected_digits(split.train, 1, seed=0)  # 2 x 3 train recordings per speaker


def test_builder_uses_a_given_loader_and_checks_settings() -> None:
    recs = [Recording("s", d, 10, Path(f"{d}_s_10.wav")) for d in range(3)]
    out = build_connected_digits(
        recs, 2, seed=0, min_digits=3, max_digits=3, silence_ms=(0.0, 0.0),
        loader=lambda p: torch.full((5,), float(p.name[0]) + 1),
    )  # fmt: skip
    assert out[0].samples.numel() == 15 and sorted(out[0].digits) == [0, 1, 2]
    for d, seg in zip(out[0].digits, out[0].segments, strict=True):
        assert (out[0].samples[seg.start : seg.end] == d + 1).all()
    with pytest.raises(ValueError, match="min_digits <= max_digits"):
        build_connected_digits(recs, 1, seed=0, min_digits=3, max_digits=2)


@pytest.mark.skipif(fsdd_folder() is None, reason="shared FSDD recordings not present")
def test_real_fsdd_split() -> None:
    root = fsdd_folder()
    assert root is not None
    recs = list_recordings(root)
    assert len(recs) == 3000
    split = split_recordings(recs)
    assert (len(split.train), len(split.valid), len(split.test)) == (2400, 300, 300)
    _check_disjoint(split, 3000)
    per_pair = {(r.speaker, r.digit) for r in split.test}
    assert len(per_pair) == 60  # 6 speakers x 10 digits, 5 test files each
    audio = load_audio(split.test[0].path, sample_rate=8000)
    assert audio.notices == () and 0.1 < audio.seconds < 2.5
