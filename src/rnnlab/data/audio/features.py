r"""Speech features in torch: log-mel filterbank, MFCC, deltas, per-utterance normalization.

Everything is a torch operation on the waveform's device, so features can be computed on the
GPU inside a training step as well as in a data loader. The pipeline of
:class:`FeatureExtractor` for a waveform ``x`` (one utterance, or a zero-padded batch with
``lengths``)::

    x: (B, N) --pre-emphasis--> y[t] = x[t] - a x[t-1]            (optional; y[0] = x[0])
      --STFT, window of win_length = window_ms, hop = hop_ms, n_fft--> X: (B, n_fft/2+1, T)
      --|X|^power--> S --mel filterbank (n_mels triangles)--> M: (B, T, n_mels)
        (training may read each utterance's filters through a VTLP frequency warp)
      --log (natural) or 10 log10 (dB), floored at log_floor--> log-mel    (kind="logmel")
      --DCT-II (orthonormal), first n_mfcc--> MFCC                          (kind="mfcc")
      --deltas (regression over +-delta_width frames), appended--> (B, T, F * (1 + deltas))
      --per-utterance mean/variance normalization over valid frames--> features

Before all that, optionally, each waveform is *prepared* (:meth:`FeatureExtractor.prepare`):
its leading and trailing silence trimmed (``trim_db``) and its RMS level set to
``loudness_dbfs`` (:mod:`rnnlab.data.audio.level`). Both are off by default.

Frames: with ``center=True`` (the default) frame ``t`` is centered on sample ``t * hop`` and the
signal is zero-padded by ``n_fft // 2`` on both sides, so an utterance of ``N`` samples has
``1 + N // hop`` frames. Padding of a batch is zero (and pre-emphasis is masked), so an
utterance gives the same valid frames alone as in a padded batch; frames past an utterance's
length are set to 0.

Conventions are parameters, so a comparison with another toolkit is meaningful: the mel
scale (``"htk"``: ``2595 log10(1 + f/700)``, or ``"slaney"``: linear below 1 kHz, logarithmic
above), filter normalization (``None``: peak 1, or ``"slaney"``: unit area), ``power`` (1
magnitude, 2 power), the log (``"natural"`` or ``"db"``), the window (``"hann"`` or
``"hamming"``, periodic). With ``mel_scale="slaney", mel_norm="slaney", power=2,
log="db", window="hann", pre_emphasis=None`` the MFCCs equal librosa's
``mfcc(S=power_to_db(melspectrogram(...), top_db=None))`` (see the tests for the tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from rnnlab.data.audio.level import normalize_loudness, trim_silence
from rnnlab.data.audio.mel import MelScale, dct_matrix, mel_filterbank

__all__ = [
    "FeatureConfig",
    "FeatureExtractor",
    "deltas",
    "normalize_utterance",
    "pre_emphasis",
]


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of :class:`FeatureExtractor`.

    Attributes:
        sample_rate: rate of the waveforms, in Hz.
        kind: ``"mfcc"`` or ``"logmel"`` (log-mel filterbank energies).
        window_ms: analysis window length in milliseconds.
        hop_ms: hop between frames in milliseconds.
        n_fft: FFT size; ``None`` means the next power of two at or above the window length.
        window: ``"hann"`` or ``"hamming"`` (periodic forms).
        n_mels: number of mel filters.
        n_mfcc: number of cepstra kept (``kind="mfcc"``), at most ``n_mels``.
        f_min: lowest filter edge in Hz.
        f_max: highest filter edge in Hz; ``None`` means ``sample_rate / 2``.
        mel_scale: ``"htk"`` or ``"slaney"``.
        mel_norm: ``None`` (triangles of peak 1) or ``"slaney"`` (triangles of unit area).
        power: exponent of the magnitude spectrum: 1 (magnitude) or 2 (power).
        log: ``"natural"`` (``ln``) or ``"db"`` (``10 log10``).
        log_floor: energies are clamped to at least this before the log.
        pre_emphasis: coefficient ``a`` of ``y[t] = x[t] - a x[t-1]``; ``None`` for none.
        center: center frames on ``t * hop`` (zero padding of ``n_fft // 2`` each side).
        deltas: 0 (none), 1 (append deltas) or 2 (append deltas and delta-deltas).
        delta_width: ``N`` of the regression formula (frames on each side).
        normalize: per-utterance mean and variance normalization of every feature.
        trim_db: trim leading and trailing frames more than this many dB below the
            recording's loudest frame (:func:`~rnnlab.data.audio.level.speech_bounds`);
            ``None`` keeps the recording whole.
        trim_margin_ms: kept on each side of the speech when trimming.
        loudness_dbfs: scale every recording to this RMS level; ``None`` keeps its gain.
    """

    sample_rate: int = 16000
    kind: Literal["mfcc", "logmel"] = "mfcc"
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None
    window: Literal["hann", "hamming"] = "hamming"
    n_mels: int = 40
    n_mfcc: int = 13
    f_min: float = 0.0
    f_max: float | None = None
    mel_scale: MelScale = "htk"
    mel_norm: Literal["slaney"] | None = None
    power: float = 2.0
    log: Literal["natural", "db"] = "natural"
    log_floor: float = 1e-10
    pre_emphasis: float | None = 0.97
    center: bool = True
    deltas: int = 0
    delta_width: int = 2
    normalize: bool = True
    trim_db: float | None = None
    trim_margin_ms: float = 30.0
    loudness_dbfs: float | None = None

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be > 0 Hz, got {self.sample_rate}")
        if self.kind not in ("mfcc", "logmel"):
            raise ValueError(f"kind must be 'mfcc' or 'logmel', got {self.kind!r}")
        if self.window not in ("hann", "hamming"):
            raise ValueError(f"window must be 'hann' or 'hamming', got {self.window!r}")
        if self.mel_scale not in ("htk", "slaney"):
            raise ValueError(f"mel_scale must be 'htk' or 'slaney', got {self.mel_scale!r}")
        if self.mel_norm not in (None, "slaney"):
            raise ValueError(f"mel_norm must be None or 'slaney', got {self.mel_norm!r}")
        if self.log not in ("natural", "db"):
            raise ValueError(f"log must be 'natural' or 'db', got {self.log!r}")
        if self.hop_ms <= 0 or self.window_ms <= 0:
            raise ValueError(
                f"window_ms and hop_ms must be > 0, got {self.window_ms}, {self.hop_ms}"
            )
        if self.win_length < 2 or self.hop_length < 1:
            raise ValueError(
                f"window_ms={self.window_ms} and hop_ms={self.hop_ms} at {self.sample_rate} Hz "
                f"give {self.win_length} and {self.hop_length} samples; need at least 2 and 1"
            )
        if self.n_fft is not None and self.n_fft < self.win_length:
            raise ValueError(
                f"n_fft={self.n_fft} is shorter than the window ({self.win_length} samples)"
            )
        if self.n_mels < 1:
            raise ValueError(f"n_mels must be >= 1, got {self.n_mels}")
        if self.kind == "mfcc" and not 1 <= self.n_mfcc <= self.n_mels:
            raise ValueError(f"n_mfcc must be in [1, n_mels={self.n_mels}], got {self.n_mfcc}")
        top = self.sample_rate / 2 if self.f_max is None else self.f_max
        if not 0 <= self.f_min < top <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 <= f_min < f_max <= sample_rate/2 = {self.sample_rate / 2}, "
                f"got f_min={self.f_min}, f_max={self.f_max}"
            )
        if self.power not in (1.0, 2.0):
            raise ValueError(f"power must be 1 (magnitude) or 2 (power), got {self.power}")
        if self.log_floor <= 0:
            raise ValueError(f"log_floor must be > 0, got {self.log_floor}")
        if self.pre_emphasis is not None and not 0 < self.pre_emphasis < 1:
            raise ValueError(f"pre_emphasis must be in (0, 1) or None, got {self.pre_emphasis}")
        if self.deltas not in (0, 1, 2):
            raise ValueError(f"deltas must be 0, 1 or 2, got {self.deltas}")
        if self.delta_width < 1:
            raise ValueError(f"delta_width must be >= 1, got {self.delta_width}")
        if self.trim_db is not None and self.trim_db <= 0:
            raise ValueError(f"trim_db must be > 0 dB (or None), got {self.trim_db}")
        if self.trim_margin_ms < 0:
            raise ValueError(f"trim_margin_ms must be >= 0, got {self.trim_margin_ms}")
        if self.loudness_dbfs is not None and not -80.0 <= self.loudness_dbfs <= 0.0:
            raise ValueError(
                f"loudness_dbfs must be in [-80, 0] dBFS (or None), got {self.loudness_dbfs}"
            )

    @property
    def prepares(self) -> bool:
        """Whether :meth:`FeatureExtractor.prepare` changes a waveform (trim or loudness)."""
        return self.trim_db is not None or self.loudness_dbfs is not None

    @property
    def win_length(self) -> int:
        """Window length in samples."""
        return round(self.window_ms * self.sample_rate / 1000)

    @property
    def hop_length(self) -> int:
        """Hop in samples."""
        return round(self.hop_ms * self.sample_rate / 1000)

    @property
    def fft_size(self) -> int:
        """``n_fft``, or the next power of two at or above the window length."""
        return self.n_fft if self.n_fft is not None else 1 << (self.win_length - 1).bit_length()

    @property
    def num_features(self) -> int:
        """Features per frame: ``n_mfcc`` or ``n_mels``, times ``1 + deltas``."""
        base = self.n_mfcc if self.kind == "mfcc" else self.n_mels
        return base * (1 + self.deltas)

    def num_frames(self, num_samples: int) -> int:
        """Frames of an utterance of ``num_samples`` samples (0 if too short uncentered)."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return max(0, 1 + (num_samples - self.fft_size) // self.hop_length)


# ------------------------------------------------------------------ per-frame operations


def pre_emphasis(waveform: Tensor, coefficient: float, lengths: Tensor | None = None) -> Tensor:
    """``y[t] = x[t] - a x[t-1]``, ``y[0] = x[0]``; samples past ``lengths`` stay 0.

    Args:
        waveform: ``(N,)`` or ``(B, N)``.
        coefficient: ``a``.
        lengths: ``(B,)`` valid samples per row of a padded batch.
    """
    out = torch.cat(
        [waveform[..., :1], waveform[..., 1:] - coefficient * waveform[..., :-1]], dim=-1
    )
    if lengths is not None:
        out = out * _valid_mask(lengths, out.shape[-1], out.device).to(out.dtype)
    return out


def deltas(features: Tensor, width: int = 2, lengths: Tensor | None = None) -> Tensor:
    r"""Regression deltas over time, replicating each utterance's first and last frame.

    .. math:: d_t = \frac{\sum_{n=1}^{N} n\,(c_{t+n} - c_{t-n})}{2 \sum_{n=1}^{N} n^2}

    Args:
        features: ``(T, F)`` or ``(B, T, F)``.
        width: ``N``, frames on each side.
        lengths: ``(B,)`` valid frames per utterance; frame ``t+n`` past the end reads the
            utterance's own last frame, not padding.

    Returns:
        Tensor of the shape of ``features``.
    """
    if width < 1:
        raise ValueError(f"delta width must be >= 1, got {width}")
    batched = features.dim() == 3
    x = features if batched else features.unsqueeze(0)  # (B, T, F)
    steps = x.shape[1]
    last = (
        torch.full((x.shape[0],), steps - 1, device=x.device)
        if lengths is None
        else lengths.to(x.device).long() - 1
    )  # (B,)
    time = torch.arange(steps, device=x.device)[None, :]  # (1, T)
    out = torch.zeros_like(x)
    for n in range(1, width + 1):
        ahead = torch.minimum(time + n, last[:, None]).clamp(min=0)  # (B, T)
        behind = (time - n).clamp(min=0)
        behind = torch.minimum(behind, last[:, None])
        gather = lambda idx: x.gather(1, idx[:, :, None].expand(-1, -1, x.shape[2]))  # noqa: E731
        out = out + n * (gather(ahead) - gather(behind))
    out = out / (2.0 * sum(n * n for n in range(1, width + 1)))
    if lengths is not None:
        out = out * _valid_mask(lengths, steps, x.device)[:, :, None].to(out.dtype)
    return out if batched else out.squeeze(0)


def normalize_utterance(
    features: Tensor, lengths: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Per-utterance mean and variance normalization of each feature over its valid frames.

    ``(c - mean) / max(std, eps)`` with the population standard deviation; padded frames
    are 0.

    Args:
        features: ``(T, F)`` or ``(B, T, F)``.
        lengths: ``(B,)`` valid frames per utterance.
        eps: floor of the standard deviation (a constant feature maps to 0).
    """
    batched = features.dim() == 3
    x = features if batched else features.unsqueeze(0)  # (B, T, F)
    if lengths is None:
        lengths = torch.full((x.shape[0],), x.shape[1], device=x.device)
    mask = _valid_mask(lengths, x.shape[1], x.device)[:, :, None].to(x.dtype)  # (B, T, 1)
    count = mask.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1, 1)
    mean = (x * mask).sum(dim=1, keepdim=True) / count  # (B, 1, F)
    var = (((x - mean) * mask) ** 2).sum(dim=1, keepdim=True) / count
    out = (x - mean) / var.sqrt().clamp(min=eps) * mask
    return out if batched else out.squeeze(0)


def _valid_mask(lengths: Tensor, size: int, device: torch.device) -> Tensor:
    """``(B, size)`` bool mask, True where the index is below the row's length."""
    return torch.arange(size, device=device)[None, :] < lengths.to(device)[:, None]


# ------------------------------------------------------------------------------ extractor


class FeatureExtractor(nn.Module):
    """Waveforms to feature frames, as configured by a :class:`FeatureConfig`.

    The window, mel filterbank and DCT are buffers, so ``extractor.to("cuda")`` moves them.

    Args:
        config: the settings (defaults: 16 kHz, 25 ms Hamming windows every 10 ms, 40 HTK
            mel filters, 13 MFCCs, pre-emphasis 0.97, per-utterance normalization).

    Example:
        >>> extractor = FeatureExtractor(FeatureConfig(sample_rate=8000, deltas=2))
        >>> feats, frames = extractor(torch.randn(2, 8000), lengths=torch.tensor([8000, 4000]))
        >>> feats.shape, frames.tolist()
        (torch.Size([2, 101, 39]), [101, 51])
    """

    window: Tensor
    filterbank: Tensor
    dct: Tensor

    def __init__(self, config: FeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config or FeatureConfig()
        cfg = self.config
        make = torch.hann_window if cfg.window == "hann" else torch.hamming_window
        self.register_buffer("window", make(cfg.win_length, periodic=True), persistent=False)
        fb = self._mel_filters()
        self.register_buffer("filterbank", fb.to(torch.float32), persistent=False)  # (M, K)
        n_dct = cfg.n_mfcc if cfg.kind == "mfcc" else 1
        self.register_buffer(
            "dct", dct_matrix(n_dct, cfg.n_mels).to(torch.float32), persistent=False
        )

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Frames of each utterance given its number of samples."""
        cfg = self.config
        if cfg.center:
            return 1 + torch.div(lengths, cfg.hop_length, rounding_mode="floor")
        return (1 + torch.div(lengths - cfg.fft_size, cfg.hop_length, rounding_mode="floor")).clamp(
            min=0
        )

    def prepare(self, samples: Tensor) -> Tensor:
        """One waveform ``(N,)`` trimmed and loudness-normalized as configured.

        The trimmed recording keeps at least one analysis window (so it still has a frame).
        """
        cfg = self.config
        out = samples
        if cfg.trim_db is not None:
            out = trim_silence(
                out,
                cfg.sample_rate,
                cfg.trim_db,
                margin_ms=cfg.trim_margin_ms,
                min_samples=cfg.win_length,
            )
        if cfg.loudness_dbfs is not None:
            out = normalize_loudness(out, cfg.loudness_dbfs)
        return out

    def _prepare_batch(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        rows = [
            self.prepare(x[b, : int(lengths[b]) if lengths is not None else x.shape[1]])
            for b in range(x.shape[0])
        ]
        sizes = torch.tensor([r.numel() for r in rows], dtype=torch.long, device=x.device)
        padded = x.new_zeros(len(rows), int(sizes.max()))
        for b, r in enumerate(rows):
            padded[b, : r.numel()] = r
        return padded, sizes

    def warped_filterbank(self, warp: Tensor) -> Tensor:
        """``(B, n_mels, K)`` mel filterbanks, utterance ``b``'s read through the VTLP warp
        ``warp[b]`` (:func:`~rnnlab.data.audio.mel.vtlp_frequency`)."""
        banks = [self._mel_filters(float(alpha)) for alpha in warp.tolist()]
        return torch.stack(banks).to(self.filterbank)

    def _mel_filters(self, warp: float = 1.0) -> Tensor:
        """The configured float64 mel filterbank ``(n_mels, K)``, read through ``warp``."""
        cfg = self.config
        return mel_filterbank(
            cfg.fft_size // 2 + 1,
            cfg.n_mels,
            cfg.sample_rate,
            cfg.f_min,
            cfg.f_max,
            cfg.mel_scale,
            cfg.mel_norm,
            warp=warp,
        )

    def forward(
        self,
        waveform: Tensor,
        lengths: Tensor | None = None,
        *,
        prepare: bool = True,
        warp: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Compute the features.

        Args:
            waveform: ``(N,)`` for one utterance, or ``(B, N)`` zero-padded with ``lengths``.
            lengths: ``(B,)`` valid samples per row; all ``N`` when omitted.
            prepare: trim and normalize each waveform first as configured
                (:meth:`prepare`); ``False`` for waveforms prepared already.
            warp: ``(B,)`` vocal tract length perturbation factors, one per utterance
                (training-time augmentation, :meth:`warped_filterbank`); ``None`` for none.

        Returns:
            ``features`` of shape ``(T, F)`` or ``(B, T, F)`` and the valid frames per
            utterance, a long tensor of shape ``()`` or ``(B,)``.
        """
        cfg = self.config
        if waveform.dim() not in (1, 2):
            raise ValueError(f"waveform must be (N,) or (B, N), got shape {tuple(waveform.shape)}")
        batched = waveform.dim() == 2
        x = (waveform if batched else waveform.unsqueeze(0)).to(torch.float32)  # (B, N)
        if prepare and cfg.prepares:
            x, lengths = self._prepare_batch(x, lengths)
        batch, num_samples = x.shape
        if lengths is None:
            lengths = torch.full((batch,), num_samples, dtype=torch.long, device=x.device)
        else:
            lengths = torch.as_tensor(lengths, device=x.device).long()
            if (
                lengths.shape != (batch,)
                or int(lengths.min()) < 1
                or int(lengths.max()) > num_samples
            ):
                raise ValueError(
                    f"lengths must be {batch} values in [1, {num_samples}], got {lengths.tolist()}"
                )
            x = x * _valid_mask(lengths, num_samples, x.device).to(x.dtype)
        if not cfg.center and int(lengths.min()) < cfg.fft_size:
            raise ValueError(
                f"with center=False every utterance needs >= n_fft={cfg.fft_size} samples, "
                f"got {int(lengths.min())}"
            )
        if cfg.pre_emphasis is not None:
            x = pre_emphasis(x, cfg.pre_emphasis, lengths)
        spec = torch.stft(
            x,
            n_fft=cfg.fft_size,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window,
            center=cfg.center,
            pad_mode="constant",
            return_complex=True,
        )  # (B, K, T)
        power = spec.abs() if cfg.power == 1.0 else spec.real**2 + spec.imag**2  # (B, K, T)
        if warp is None:
            mel = torch.matmul(power.transpose(1, 2), self.filterbank.T)  # (B, T, M)
        else:
            if warp.shape != (batch,):
                raise ValueError(f"warp must be {batch} factors, got shape {tuple(warp.shape)}")
            banks = self.warped_filterbank(warp)  # (B, M, K)
            mel = torch.matmul(power.transpose(1, 2), banks.transpose(1, 2))  # (B, T, M)
        logmel = mel.clamp(min=cfg.log_floor)
        logmel = 10.0 * torch.log10(logmel) if cfg.log == "db" else torch.log(logmel)
        feats = logmel @ self.dct.T if cfg.kind == "mfcc" else logmel  # (B, T, F0)
        frames = self.frame_lengths(lengths)  # (B,)
        if cfg.deltas:
            d1 = deltas(feats, cfg.delta_width, frames)
            parts = [feats, d1]
            if cfg.deltas == 2:
                parts.append(deltas(d1, cfg.delta_width, frames))
            feats = torch.cat(parts, dim=-1)  # (B, T, F)
        if cfg.normalize:
            feats = normalize_utterance(feats, frames)
        else:
            feats = feats * _valid_mask(frames, feats.shape[1], feats.device)[:, :, None].to(
                feats.dtype
            )
        if batched:
            return feats, frames
        return feats.squeeze(0), frames.squeeze(0)
