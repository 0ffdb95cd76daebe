"""Fuzzed recordings for ``rnnlab recognize RUN FILE``: valid WAV and FLAC files written by
soundfile with random sample rates, channel counts, sample formats, lengths and content
(tones, noise, silence, clipping, non-finite samples), then maybe truncated, with header or
body bytes changed, garbage appended, or replaced by random bytes, under a random file name
suffix; with random ``--beam`` and ``--max-seconds``. Each case must exit 0 or 2 with no
traceback and one error line for the bad file, and leave the run directory and the
recording byte-identical."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from tests.fuzz.helpers import check, copy_run, fuzz, snapshot

from rnnlab.speech import tone_word

SUBTYPES = {
    "WAV": ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW", "MS_ADPCM"],
    "FLAC": ["PCM_S8", "PCM_16", "PCM_24"],
}
RATES = [1, 100, 4000, 8000, 11025, 16000, 22050, 44100, 48000, 96000]


@st.composite
def recordings(draw: st.DrawFn) -> bytes:
    """A valid file's bytes (soundfile writes it), for the mutations to start from."""
    kind = draw(st.sampled_from(["WAV", "WAV", "FLAC"]))
    subtype = draw(st.sampled_from(SUBTYPES[kind]))
    rate = draw(st.sampled_from(RATES))
    channels = draw(st.sampled_from([1, 1, 1, 2, 3, 6]))
    seconds = draw(st.sampled_from([0.0, 0.001, 0.05, 0.3, 0.6, 1.2]))
    frames = max(round(seconds * rate), draw(st.sampled_from([0, 1, 2])))
    content = draw(st.sampled_from(["tones", "tones", "noise", "silence", "loud", "nonfinite"]))
    if content == "tones":
        word = tone_word(draw(st.integers(0, 2)), torch.Generator().manual_seed(1), max(rate, 1))
        mono = np.resize(word.numpy(), frames) if frames else np.zeros(0, np.float32)
    elif content == "noise":
        mono = np.random.default_rng(draw(st.integers(0, 9))).uniform(-1, 1, frames)
    elif content == "silence":
        mono = np.zeros(frames)
    elif content == "loud":
        mono = np.full(frames, draw(st.sampled_from([1.0, -1.0, 8.0, 1e30])))
    else:
        mono = np.zeros(frames)
        mono[:: max(1, frames // 3)] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    samples = np.repeat(mono.astype(np.float64)[:, None], channels, axis=1)
    # libsndfile's own A-law / mu-law encoders index a table with the sample value: writing
    # values far outside [-1, 1] (or NaN) crashes the writing process (a segfault in
    # sf.write, reproduced without rnnlab). Such files are made by mutating bytes instead.
    assume(subtype not in ("ULAW", "ALAW") or bool(np.all(np.abs(samples) <= 1.0)))
    buffer = io.BytesIO()
    try:
        sf.write(buffer, samples, rate, subtype=subtype, format=kind)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        assume(False)  # a combination libsndfile cannot write
    return buffer.getvalue()


@st.composite
def audio_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """A file name and bytes: a :func:`recordings` file, maybe mutated, or random bytes."""
    suffix = draw(st.sampled_from([".wav", ".wav", ".flac", ".WAV", ".mp3", ""]))
    if draw(st.integers(0, 9)) == 0:
        return f"clip{suffix}", draw(st.binary(max_size=200))
    data = draw(recordings())
    mutation = draw(
        st.sampled_from(["none", "none", "none", "truncate", "header", "body", "append"])
    )
    if mutation == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif mutation in ("header", "body"):
        low, high = (0, min(64, len(data))) if mutation == "header" else (0, len(data))
        changed = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            changed[draw(st.integers(low, high - 1))] = draw(st.integers(0, 255))
        data = bytes(changed)
    elif mutation == "append":
        data += draw(st.binary(min_size=1, max_size=64))
    return f"clip{suffix}", data


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-audio")


@fuzz(60)
@given(
    file=audio_files(),
    which=st.sampled_from(["digits", "ctc"]),
    beam=st.sampled_from([*[None] * 6, 1, 3, 0]),
    max_seconds=st.sampled_from([*[None] * 10, 0.5, 0.0, -1.0, math.nan, math.inf]),
    as_json=st.booleans(),
)
def test_generated_recordings(
    root: Path,
    speech_runs: dict[str, Path],
    file: tuple[str, bytes],
    which: str,
    beam: int | None,
    max_seconds: float | None,
    as_json: bool,
) -> None:
    run = copy_run(speech_runs[which], root)
    name, data = file
    path = run.parent / name
    path.write_bytes(data)
    before = snapshot(run, path)
    args = ["recognize", run, path]
    if beam is not None:
        args += ["--beam", str(beam)]
    if max_seconds is not None:
        args += ["--max-seconds", str(max_seconds)]
    if as_json:
        args.append("--json")
    result = check(args, before)
    if result.exit_code == 0:
        if as_json:
            [entry] = json.loads(result.stdout)
            assert entry["file"] == str(path) and "error" not in entry
        else:
            assert result.stdout.startswith(f"{path}: "), result.stdout
