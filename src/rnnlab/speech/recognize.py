"""Recognizing new recordings with a trained speech run (``rnnlab recognize``, Python first).

:func:`load_recognizer` rebuilds a run's task, model and feature pipeline from its run
directory (:class:`~rnnlab.training.run_dir.RunDir`: ``config.toml`` and the best checkpoint,
else the last); :meth:`Recognizer.recognize_file` turns one WAV or FLAC file into a digit
(``speech-digits``) or a transcript with per-word times (``speech-ctc``: greedy decoding or
prefix beam search, times from the CTC alignment, :func:`word_times`); :func:`recognize`
does a batch of files, a bad file not stopping the others.

Every recording is screened first (:mod:`rnnlab.speech.screening`): one shorter than a
feature window is an error, and a silent one (peak below
:data:`~rnnlab.speech.screening.SILENCE_PEAK_DBFS`, -60 dBFS) is answered "no speech found"
without running the model: ``"speech": False``, no digit (``"digit": None``) or an empty
transcript, and the notice ``"no speech found in silent.wav (peak -inf dBFS, ...)"``.

Example (a finished run)::

    >>> recognize("runs/fsdd-ctc", ["one.wav"], beam_width=8)  # doctest: +SKIP
    [{'file': 'one.wav', 'transcript': 'three one', 'digits': [3, 1], ...}]
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from rnnlab.data.audio import AudioError, FeatureExtractor, load_audio, peak_dbfs
from rnnlab.errors import ConfigError, RunDirError
from rnnlab.registry import TASKS
from rnnlab.speech.ctc import TokenSpan, ctc_align, ctc_beam_search, ctc_greedy_decode
from rnnlab.speech.ctc_task import SpeechCTCTask
from rnnlab.speech.screening import SILENCE_PEAK_DBFS, check_length, silence_notice
from rnnlab.speech.sentences import SpeechSentencesTask
from rnnlab.speech.task import SpeechTask
from rnnlab.speech.vocabulary import BLANK, CTCVocabulary
from rnnlab.tasks.base import model_device
from rnnlab.training.run_dir import RunDir

__all__ = ["Recognizer", "load_recognizer", "parse_warps", "recognize", "word_times"]


@dataclass
class Recognizer:
    """A trained speech model with its feature pipeline, ready for new recordings.

    Attributes:
        task: the run's task (``speech-digits`` or ``speech-ctc``).
        model: the model in eval mode.
        extractor: the run's feature extractor.
        run_dir: where it was loaded from.
        max_seconds: longer recordings are rejected.
        notices: notices about the run itself (none so far).
        silence_dbfs: a recording whose peak (DC removed) is below this level, in dBFS,
            is answered "no speech found" (default :data:`SILENCE_PEAK_DBFS`).
    """

    task: SpeechTask
    model: nn.Module
    extractor: FeatureExtractor
    run_dir: Path
    max_seconds: float
    notices: list[str] = field(default_factory=list)
    silence_dbfs: float = SILENCE_PEAK_DBFS

    @property
    def frame_seconds(self) -> float:
        """Seconds between feature frames (the hop)."""
        cfg = self.extractor.config
        return cfg.hop_length / cfg.sample_rate

    @torch.no_grad()
    def recognize_file(
        self,
        path: str | os.PathLike[str],
        beam_width: int = 1,
        *,
        lm: bool = False,
        stream_ms: float | None = None,
        alpha: float | None = None,
        beta: float | None = None,
        warps: Sequence[float] | None = None,
    ) -> dict[str, Any]:
        """Recognize one recording.

        Args:
            path: a WAV or FLAC file (converted to the run's rate and to mono, with notices).
            beam_width: CTC beam (1: greedy decoding); ignored by ``speech-digits``.
            lm, stream_ms, alpha, beta: ``speech-sentences`` only: decode with the run's
                word LM (beam search; ``beam_width`` 1 means the run's tuned width, and
                ``alpha``/``beta`` default to the values tuned on valid), and recognize
                chunk by chunk (``stream_ms`` per chunk, a unidirectional model; the result
                gains ``latency``). See :mod:`rnnlab.speech.sentences_recognize`.
            warps: ``speech-digits`` only: test-time augmentation. The features are computed
                once per vocal tract length factor (``1.0`` is the plain pipeline; the same
                warp as training's ``data.augment.vtlp``) and the class posteriors
                averaged, so a voice far from the training speakers' is also seen
                through the warps that bring it closer. ``None`` or empty: no averaging.

        Returns:
            For ``speech-digits``: ``{"file", "seconds", "peak_dbfs", "speech", "digit",
            "word", "confidence", "notices"}``; for ``speech-ctc``: ``{"file", "seconds",
            "peak_dbfs", "speech", "transcript", "digits", "log_prob", "words": [{"word",
            "start", "end"}], "notices"}`` (times in seconds from the alignment).
            ``peak_dbfs`` is the recording's peak level (``None`` for digital silence, which
            is ``-inf``). A silent recording has ``"speech": False``, ``digit``, ``word``,
            ``confidence`` and ``log_prob`` ``None``, an empty transcript, and a "no speech
            found" notice.

        Raises:
            AudioError: the file is missing, empty, not audio, too long, or shorter than one
                feature window.
        """
        if beam_width < 1:
            raise ValueError(f"beam width must be >= 1, got {beam_width}")
        if warps and isinstance(self.task, SpeechCTCTask | SpeechSentencesTask):
            raise ValueError("warps (test-time VTLP averaging) is for speech-digits runs")
        cfg = self.extractor.config
        audio = load_audio(path, cfg.sample_rate, max_seconds=self.max_seconds, warn=False)
        check_length(audio, cfg)
        peak = peak_dbfs(audio.samples)
        result: dict[str, Any] = {
            "file": str(path),
            "seconds": round(audio.seconds, 4),
            "peak_dbfs": None if math.isinf(peak) else round(peak, 1),
        }
        no_speech = silence_notice(audio, self.silence_dbfs)
        if no_speech is not None:
            result.update(self._no_speech())
            result["notices"] = [*audio.notices, no_speech]
            return result
        if isinstance(self.task, SpeechSentencesTask):
            result["speech"] = True
            result.update(self._sentence(audio.samples, beam_width, lm, stream_ms, alpha, beta))
            result["notices"] = list(audio.notices)
            return result
        device = model_device(self.model)
        if warps:
            x, lengths = self._warped_features(audio.samples, warps)  # (K, T, F), (K,)
        else:
            features, frames = self.extractor(audio.samples)  # (T, F), ()
            x, lengths = features.unsqueeze(0), frames.reshape(1)  # (1, T, F), (1,)
        output, _ = self.model(x.to(device), lengths)
        result["speech"] = True
        if isinstance(self.task, SpeechCTCTask):
            result.update(self._transcribe(output[0].float().cpu(), beam_width))
        else:
            probs = torch.softmax(output.float(), dim=-1).mean(dim=0).cpu()  # (C,)
            digit = int(probs.argmax())
            result.update(
                {"digit": digit, "word": self.task.words[digit], "confidence": float(probs[digit])}
            )
        result["notices"] = list(audio.notices)
        return result

    def _sentence(
        self,
        samples: Tensor,
        beam_width: int,
        lm: bool,
        stream_ms: float | None,
        alpha: float | None,
        beta: float | None,
    ) -> dict[str, Any]:
        from rnnlab.speech.sentences_recognize import transcribe, transcribe_stream

        assert isinstance(self.task, SpeechSentencesTask)
        beam = beam_width if beam_width > 1 else None
        if stream_ms is not None:
            return transcribe_stream(
                self.task,
                self.model,
                samples,
                stream_ms,
                lm=lm,
                beam_width=beam,
                alpha=alpha,
                beta=beta,
            )
        return transcribe(
            self.task,
            self.model,
            self.extractor,
            samples,
            lm=lm,
            beam_width=beam,
            alpha=alpha,
            beta=beta,
        )

    def _warped_features(self, samples: Tensor, warps: Sequence[float]) -> tuple[Tensor, Tensor]:
        """Features ``(K, T, F)`` and frames ``(K,)`` of one recording through each warp."""
        if _out_of_range(warps):
            raise ValueError(f"warps must be VTLP factors in (0.5, 2), got {list(warps)}")
        factors = torch.tensor([float(w) for w in warps], dtype=torch.float32)
        prepared = self.extractor.prepare(samples) if self.extractor.config.prepares else samples
        copies = prepared.unsqueeze(0).expand(len(factors), -1).contiguous()  # (K, N)
        return self.extractor(copies, prepare=False, warp=factors)

    def _no_speech(self) -> dict[str, Any]:
        """The answer for a silent recording: no digit, or an empty transcript."""
        if isinstance(self.task, SpeechSentencesTask):
            return {"speech": False, "transcript": "", "log_prob": None, "words": []}
        if isinstance(self.task, SpeechCTCTask):
            return {"speech": False, "transcript": "", "digits": [], "log_prob": None, "words": []}
        return {"speech": False, "digit": None, "word": None, "confidence": None}

    def _transcribe(self, log_probs: Tensor, beam_width: int) -> dict[str, Any]:
        assert isinstance(self.task, SpeechCTCTask)
        vocab = self.task.vocabulary
        if beam_width == 1:
            hyp = ctc_greedy_decode(log_probs, BLANK)
            spans = list(hyp.spans)
        else:
            hyp = ctc_beam_search(log_probs, beam_width, BLANK)[0]
            spans = list(hyp.spans) or ctc_align(log_probs, hyp.tokens, BLANK)
        words = word_times(spans, vocab, self.frame_seconds)
        transcript = vocab.decode(hyp.tokens)
        digits = [vocab.words.index(w) for w in transcript.split() if w in vocab.words]
        return {
            "transcript": transcript,
            "digits": digits,
            "log_prob": float(hyp.log_prob),
            "words": words,
        }


def word_times(
    spans: Sequence[TokenSpan], vocab: CTCVocabulary, frame_seconds: float
) -> list[dict[str, Any]]:
    """Words with start and end times (seconds) from CTC token spans.

    Word tokens map one to one; characters are grouped into words at spaces, a word
    running from its first character's first frame to its last character's last frame.

    Example:
        >>> vocab = CTCVocabulary.for_words(["one", "two"], "word")
        >>> word_times([TokenSpan(2, 10, 12)], vocab, 0.01)
        [{'word': 'two', 'start': 0.1, 'end': 0.12}]
    """
    groups: list[list[TokenSpan]] = []
    if vocab.unit == "word":
        groups = [[span] for span in spans]
    else:
        current: list[TokenSpan] = []
        for span in spans:
            if vocab.tokens[span.token - 1] == " ":
                if current:
                    groups.append(current)
                current = []
            else:
                current.append(span)
        if current:
            groups.append(current)
    out = []
    for group in groups:
        text = "".join(vocab.tokens[s.token - 1] for s in group)
        start = round(group[0].seconds(frame_seconds)[0], 4)
        end = round(group[-1].seconds(frame_seconds)[1], 4)
        out.append({"word": text, "start": start, "end": end})
    return out


def load_recognizer(
    run_dir: str | os.PathLike[str],
    checkpoint: Literal["best", "last"] = "best",
    device: str = "cpu",
    max_seconds: float | None = None,
) -> Recognizer:
    """Rebuild a speech run's model and features from its directory.

    Args:
        run_dir: a run directory of ``speech-digits`` or ``speech-ctc`` (``config.toml``
            and ``checkpoints/best.pt`` or ``last.pt``).
        checkpoint: ``best`` (falls back to ``last``) or ``last``.
        device: where the model runs.
        max_seconds: the longest recording accepted (default the run's ``data.max_seconds``).

    Raises:
        RunDirError: not a run directory of a speech task.
        CheckpointError: the checkpoint is missing or does not fit.
    """
    run = RunDir(run_dir).require()
    cfg = run.config()
    task = TASKS.get(cfg.task.name)(cfg)
    if not isinstance(task, SpeechTask):
        raise RunDirError(
            f"{run.path} is a run of task {cfg.task.name!r}, not a speech task "
            "(speech-digits, speech-ctc)"
        )
    if isinstance(task, SpeechSentencesTask):
        task.load_run_files(run.path)  # units, LM and tuned decoding weights
    model = task.build_model(task.spec())
    run.load_model(model, checkpoint)
    model.to(torch.device(device)).eval()
    limit = max_seconds if max_seconds is not None else task.data_config.max_seconds
    if limit <= 0:
        raise ConfigError(f"max_seconds must be > 0, got {limit}")
    return Recognizer(task, model, task.extractor, run.path, float(limit))


#: Vocal tract length factors accepted for test-time averaging (exclusive bounds).
WARP_RANGE = (0.5, 2.0)


def _out_of_range(factors: Sequence[float]) -> list[float]:
    low, high = WARP_RANGE
    return [w for w in factors if not low < w < high]


def parse_warps(warps: Sequence[float] | str | None) -> list[float]:
    """VTLP factors from a sequence or a comma-separated text; each must lie in (0.5, 2).

    Example:
        >>> parse_warps("0.85, 1.0,1.15")
        [0.85, 1.0, 1.15]
    """
    if warps is None:
        return []
    items = [w for w in warps.split(",") if w.strip()] if isinstance(warps, str) else warps
    try:
        factors = [float(w) for w in items]
    except ValueError:
        raise ConfigError(f"--warps {warps!r}: expected comma-separated numbers") from None
    bad = _out_of_range(factors)
    if bad:
        raise ConfigError(f"--warps: VTLP factors must lie in (0.5, 2), got {bad}")
    return factors


def recognize(
    run_dir: str | os.PathLike[str],
    files: Sequence[str | os.PathLike[str]],
    *,
    beam_width: int = 1,
    checkpoint: Literal["best", "last"] = "best",
    max_seconds: float | None = None,
    lm: bool = False,
    stream_ms: float | None = None,
    alpha: float | None = None,
    beta: float | None = None,
    warps: Sequence[float] | str | None = None,
) -> list[dict[str, Any]]:
    """Recognize recordings with a trained speech run; a bad file does not stop the batch.

    Args:
        run_dir: a ``speech-digits`` or ``speech-ctc`` run directory.
        files: WAV or FLAC files.
        beam_width: CTC prefix beam width (1: greedy); ignored for ``speech-digits``.
        checkpoint: ``best`` or ``last``.
        max_seconds: the longest recording accepted (default the run's ``data.max_seconds``).
        lm, stream_ms, alpha, beta: ``speech-sentences`` runs only (see
            :meth:`Recognizer.recognize_file`).
        warps: ``speech-digits`` runs only: test-time VTLP averaging over these factors
            (a sequence, or the command line's comma-separated text ``"0.85,1.0,1.15"``).

    Returns:
        One dict per file, in order: :meth:`Recognizer.recognize_file`'s result (for a
        silent recording ``"speech": False`` with a "no speech found" notice), or
        ``{"file": ..., "error": "one-line message"}`` for a file that could not be used.

    Raises:
        RunDirError, CheckpointError: the run cannot be loaded.
        ConfigError: ``beam_width < 1``; warps that are not factors in (0.5, 2), or warps
            for a run that is not ``speech-digits``.
    """
    if beam_width < 1:
        raise ConfigError(f"beam width must be >= 1, got {beam_width}")
    factors = parse_warps(warps)
    if stream_ms is not None and stream_ms <= 0:
        raise ConfigError(f"--stream chunk size must be > 0 ms, got {stream_ms}")
    recognizer = load_recognizer(run_dir, checkpoint, max_seconds=max_seconds)
    task = recognizer.task
    if not isinstance(task, SpeechSentencesTask) and (lm or stream_ms is not None):
        raise ConfigError(f"--lm and --stream need a speech-sentences run, not {task.name!r}")
    if factors and isinstance(task, SpeechCTCTask | SpeechSentencesTask):
        raise ConfigError(f"--warps is for speech-digits runs, not {task.name!r}")
    if isinstance(task, SpeechSentencesTask):
        if lm and task.lm is None:
            raise ConfigError(f"{recognizer.run_dir} has no lm.arpa (trained without an LM)")
        if stream_ms is not None:
            from rnnlab.speech.streaming import StreamingRecognizer

            StreamingRecognizer(recognizer.model, task.feature_config, 1, task.units)  # checks
    results: list[dict[str, Any]] = []
    for file in files:
        try:
            results.append(
                recognizer.recognize_file(
                    file,
                    beam_width,
                    lm=lm,
                    stream_ms=stream_ms,
                    alpha=alpha,
                    beta=beta,
                    warps=factors,
                )
            )
        except AudioError as err:
            results.append({"file": str(file), "error": str(err)})
    return results
