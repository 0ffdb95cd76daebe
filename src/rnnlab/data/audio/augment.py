"""Training-time augmentation: SpecAugment masking, additive noise at a chosen SNR, speed
perturbation.

Both functions take an explicit keyword ``training``: with ``training=False`` they return
their input unchanged (no copy, no random draw), so evaluation never sees augmented data
whatever the caller's module mode. Random draws come from an optional ``torch.Generator``
(on the CPU) so a seeded run augments the same way every time.

- :func:`spec_augment` (Park et al. 2019, without time warping): ``freq_masks`` bands of
  ``0..freq_width`` consecutive feature channels and ``time_masks`` spans of
  ``0..time_width`` consecutive frames (and at most ``max_time_fraction`` of the
  utterance's valid frames) are set to ``fill``, independently per utterance.
- :func:`add_noise`: adds white Gaussian noise (or a given noise recording, tiled) scaled so
  that ``10 log10(P_signal / P_noise) = snr_db``, powers measured over valid samples.
- :func:`speed_perturb`: resamples a waveform so it plays ``factor`` times faster (tempo,
  pitch and formants all scale by ``factor``).
- Vocal tract length perturbation is not here: it warps the mel filters, so it lives in the
  feature extractor (``FeatureExtractor(..., warp=)``, :func:`rnnlab.data.audio.vtlp_frequency`).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["add_noise", "spec_augment", "speed_perturb"]


def _band_mask(
    batch: int,
    size: int,
    limit: Tensor,
    count: int,
    max_width: Tensor,
    generator: torch.Generator | None,
) -> Tensor:
    """``(B, size)`` bool mask, the union of ``count`` random bands per row.

    Each band has width ``w ~ U{0..max_width[b]}`` and starts at ``s ~ U{0..limit[b] - w}``.
    """
    u = torch.rand(batch, count, 2, generator=generator)  # (B, K, 2)
    widths = torch.floor(u[..., 0] * (max_width[:, None] + 1).to(u.dtype)).long()  # (B, K)
    widths = torch.minimum(widths, limit[:, None])
    starts = torch.floor(u[..., 1] * (limit[:, None] - widths + 1).to(u.dtype)).long()  # (B, K)
    index = torch.arange(size)[None, None, :]  # (1, 1, size)
    inside = (index >= starts[..., None]) & (index < (starts + widths)[..., None])  # (B, K, size)
    return inside.any(dim=1)  # (B, size)


def spec_augment(
    features: Tensor,
    *,
    training: bool,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 20,
    max_time_fraction: float = 0.2,
    lengths: Tensor | None = None,
    fill: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SpecAugment frequency and time masking.

    Args:
        features: ``(T, F)`` or ``(B, T, F)``.
        training: apply the masks; with ``False`` the input is returned as is.
        freq_masks: number of frequency bands masked per utterance.
        freq_width: widest frequency band (channels).
        time_masks: number of time spans masked per utterance.
        time_width: widest time span (frames).
        max_time_fraction: a time span is also at most this fraction of the valid frames.
        lengths: ``(B,)`` valid frames per utterance; masks stay inside them.
        fill: value written into masked cells (0 suits normalized features).
        generator: source of randomness (CPU generator).

    Returns:
        A new tensor of the shape of ``features`` (or ``features`` itself when not training).

    Example:
        >>> x = torch.ones(50, 20)
        >>> y = spec_augment(x, training=True, generator=torch.Generator().manual_seed(0))
        >>> bool((y == 0).any()), spec_augment(x, training=False) is x
        (True, True)
    """
    if min(freq_masks, freq_width, time_masks, time_width) < 0:
        raise ValueError(
            "mask counts and widths must be >= 0, got "
            f"freq_masks={freq_masks}, freq_width={freq_width}, "
            f"time_masks={time_masks}, time_width={time_width}"
        )
    if not 0.0 <= max_time_fraction <= 1.0:
        raise ValueError(f"max_time_fraction must be in [0, 1], got {max_time_fraction}")
    if not training:
        return features
    batched = features.dim() == 3
    x = features if batched else features.unsqueeze(0)  # (B, T, F)
    batch, steps, channels = x.shape
    frames = (
        torch.full((batch,), steps, dtype=torch.long)
        if lengths is None
        else torch.as_tensor(lengths).long().cpu()
    )
    mask = torch.zeros(batch, steps, channels, dtype=torch.bool)
    if freq_masks and freq_width:
        limit = torch.full((batch,), channels, dtype=torch.long)
        widest = torch.full((batch,), freq_width, dtype=torch.long)
        mask |= _band_mask(batch, channels, limit, freq_masks, widest, generator)[:, None, :]
    if time_masks and time_width:
        widest = torch.minimum(
            torch.full((batch,), time_width, dtype=torch.long),
            torch.floor(frames.to(torch.float64) * max_time_fraction).long(),
        )
        mask |= _band_mask(batch, steps, frames, time_masks, widest, generator)[:, :, None]
    out = x.masked_fill(mask.to(x.device), fill)
    return out if batched else out.squeeze(0)


def add_noise(
    waveform: Tensor,
    snr_db: float | tuple[float, float],
    *,
    training: bool,
    noise: Tensor | None = None,
    lengths: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Add noise at a signal-to-noise ratio.

    The noise ``n`` is scaled by ``g`` so that
    ``10 log10(mean(x^2) / mean((g n)^2)) = snr_db`` over each utterance's valid samples. A
    silent utterance (zero power) is returned unchanged.

    Args:
        waveform: ``(N,)`` or ``(B, N)``.
        snr_db: the SNR in dB, or a ``(low, high)`` range drawn uniformly per utterance.
        training: add the noise; with ``False`` the input is returned as is.
        noise: a noise recording ``(M,)`` (tiled or cut to ``N``); white Gaussian if ``None``.
        lengths: ``(B,)`` valid samples per row; padding stays 0.
        generator: source of randomness (CPU generator).

    Returns:
        The noisy waveform, of the shape of ``waveform``.
    """
    low, high = (snr_db, snr_db) if isinstance(snr_db, (int, float)) else snr_db
    if low > high:
        raise ValueError(f"snr_db range must be (low, high) with low <= high, got {snr_db}")
    if not training:
        return waveform
    batched = waveform.dim() == 2
    x = waveform if batched else waveform.unsqueeze(0)  # (B, N)
    batch, size = x.shape
    valid = (
        torch.ones(batch, size, dtype=torch.bool)
        if lengths is None
        else torch.arange(size)[None, :] < torch.as_tensor(lengths).cpu()[:, None]
    ).to(x.device)  # (B, N)
    if noise is None:
        n = torch.randn(batch, size, generator=generator).to(x.device, x.dtype)  # (B, N)
    else:
        if noise.dim() != 1 or noise.numel() == 0:
            raise ValueError(
                f"noise must be a non-empty (M,) tensor, got shape {tuple(noise.shape)}"
            )
        reps = -(-size // noise.numel())
        n = noise.to(x.device, x.dtype).repeat(reps)[:size].expand(batch, size)
    n = n * valid
    count = valid.sum(dim=1).clamp(min=1)  # (B,)
    p_signal = (x * valid).pow(2).sum(dim=1) / count  # (B,)
    p_noise = n.pow(2).sum(dim=1) / count
    snr = low + (high - low) * torch.rand(batch, generator=generator, dtype=torch.float64)
    target = p_signal / torch.pow(10.0, snr.to(x.device, x.dtype) / 10.0)  # (B,)
    gain = torch.where(
        p_noise > 0, (target / p_noise.clamp(min=1e-30)).sqrt(), torch.zeros_like(p_noise)
    )
    out = x + gain[:, None] * n
    return out if batched else out.squeeze(0)


def speed_perturb(samples: Tensor, factor: float, *, max_denominator: int = 40) -> Tensor:
    """Play a waveform ``factor`` times faster (Ko et al. 2015's speed perturbation).

    The signal is resampled by ``1 / factor`` (approximated as ``up / down`` with
    ``down <= max_denominator``, SciPy's polyphase ``resample_poly``, which low-passes before
    decimating, so nothing aliases) and read at the original rate: duration scales by
    ``1 / factor`` and every frequency, pitch and formants alike, by ``factor``. A speaker's
    vocal tract length moves the formants the same way, so this is the cheapest way to hear
    more speakers than the corpus has.

    Args:
        samples: ``(N,)`` waveform.
        factor: > 0; 1 returns ``samples``.
        max_denominator: the largest ``down`` of the rational approximation.

    Example:
        >>> speed_perturb(torch.zeros(8000), 1.25).shape
        torch.Size([6400])
    """
    from fractions import Fraction

    import numpy as np
    from scipy.signal import resample_poly

    if factor <= 0:
        raise ValueError(f"speed factor must be > 0, got {factor}")
    ratio = Fraction(1.0 / factor).limit_denominator(max_denominator)
    if ratio == 1:
        return samples
    out = resample_poly(samples.double().numpy(), ratio.numerator, ratio.denominator)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))
