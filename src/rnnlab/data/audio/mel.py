r"""The mel scale and the matrices of the feature pipeline: mel filterbank and DCT-II.

Two mel scales: ``"htk"`` (``2595 log10(1 + f/700)``) and ``"slaney"`` (linear below 1 kHz,
logarithmic above). :func:`mel_filterbank` builds the triangular filters over a one-sided
spectrum and :func:`dct_matrix` the orthonormal DCT-II that turns log-mels into MFCCs; both
are used by :class:`~rnnlab.data.audio.features.FeatureExtractor`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

__all__ = ["MelScale", "dct_matrix", "hz_to_mel", "mel_filterbank", "mel_to_hz", "vtlp_frequency"]

MelScale = Literal["htk", "slaney"]


def hz_to_mel(hz: Tensor, scale: MelScale = "htk") -> Tensor:
    """Frequency in Hz to mels: HTK ``2595 log10(1 + f/700)``, or Slaney's scale.

    Slaney's (Auditory Toolbox) scale is linear below 1 kHz, ``3 f / 200``, and logarithmic
    above: ``15 + 27 ln(f / 1000) / ln(6.4)``.
    """
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    linear = 3.0 * hz / 200.0
    log_part = 15.0 + 27.0 * torch.log(hz.clamp(min=1000.0) / 1000.0) / math.log(6.4)
    return torch.where(hz >= 1000.0, log_part, linear)


def mel_to_hz(mel: Tensor, scale: MelScale = "htk") -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    if scale == "htk":
        return 700.0 * (torch.pow(10.0, mel / 2595.0) - 1.0)
    linear = 200.0 * mel / 3.0
    log_part = 1000.0 * torch.exp((mel.clamp(min=15.0) - 15.0) * math.log(6.4) / 27.0)
    return torch.where(mel >= 15.0, log_part, linear)


def mel_filterbank(
    n_freqs: int,
    n_mels: int,
    sample_rate: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    scale: MelScale = "htk",
    norm: Literal["slaney"] | None = None,
    warp: float = 1.0,
) -> Tensor:
    r"""Triangular mel filters over the bins of a one-sided spectrum.

    The ``n_mels + 2`` edges ``e_0 < ... < e_{n_mels+1}`` are equally spaced in mels between
    ``f_min`` and ``f_max``; filter ``m`` rises from ``e_m`` to 1 at ``e_{m+1}`` and falls to 0
    at ``e_{m+2}``:

    .. math:: w_m(f) = \max\left(0, \min\left(\frac{f - e_m}{e_{m+1} - e_m},
              \frac{e_{m+2} - f}{e_{m+2} - e_{m+1}}\right)\right)

    With ``norm="slaney"`` each filter is scaled by ``2 / (e_{m+2} - e_m)`` (unit area).

    Args:
        n_freqs: number of spectrum bins, ``n_fft // 2 + 1``, at ``k * sample_rate / n_fft``.
        n_mels: number of filters.
        sample_rate: in Hz.
        f_min: lowest edge in Hz.
        f_max: highest edge in Hz (``sample_rate / 2`` when ``None``).
        scale: ``"htk"`` or ``"slaney"`` mel scale.
        norm: ``None`` or ``"slaney"``.
        warp: vocal tract length factor ``alpha``: bin ``f`` is read as
            :func:`vtlp_frequency` ``(f, alpha)`` (``1`` for none), so a spectrum's formants
            land where a speaker with a vocal tract ``alpha`` times shorter has them.

    Returns:
        float64 tensor of shape ``(n_mels, n_freqs)``.
    """
    top = sample_rate / 2 if f_max is None else f_max
    bins = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=torch.float64)  # (K,)
    if warp != 1.0:
        bins = vtlp_frequency(bins, warp, sample_rate / 2)
    limits = torch.tensor([f_min, top], dtype=torch.float64)
    low, high = hz_to_mel(limits, scale).tolist()
    edges = mel_to_hz(torch.linspace(low, high, n_mels + 2, dtype=torch.float64), scale)  # (M+2,)
    widths = edges.diff()  # (M+1,)
    rise = (bins[None, :] - edges[:-2, None]) / widths[:-1, None]  # (M, K)
    fall = (edges[2:, None] - bins[None, :]) / widths[1:, None]  # (M, K)
    weights = torch.minimum(rise, fall).clamp(min=0.0)  # (M, K)
    if norm == "slaney":
        weights = weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


def vtlp_frequency(hz: Tensor, alpha: float, nyquist: float, boundary: float = 0.8) -> Tensor:
    r"""Vocal tract length perturbation's piecewise-linear frequency warp (Jaitly and
    Hinton 2013).

    With the knee ``f_0 = boundary \cdot nyquist \cdot \min(\alpha, 1) / \alpha``:

    .. math:: w(f) = \begin{cases} \alpha f & f \le f_0 \\
              n - \frac{n - \alpha f_0}{n - f_0} (n - f) & f > f_0 \end{cases}

    with ``n`` the Nyquist frequency, so ``w`` is continuous, increasing, and maps
    ``[0, n]`` onto itself (nothing leaves the band).

    Example:
        >>> vtlp_frequency(torch.tensor([0.0, 1000.0, 4000.0]), 1.1, 4000.0).tolist()
        [0.0, 1100.0, 4000.0]
    """
    if alpha <= 0:
        raise ValueError(f"warp factor must be > 0, got {alpha}")
    knee = boundary * nyquist * min(alpha, 1.0) / alpha
    upper = nyquist - (nyquist - alpha * knee) / (nyquist - knee) * (nyquist - hz)
    return torch.where(hz <= knee, alpha * hz, upper)


def dct_matrix(n_mfcc: int, n_mels: int) -> Tensor:
    r"""Orthonormal DCT-II, first ``n_mfcc`` rows: ``c = D x`` for a log-mel vector ``x``.

    .. math:: D_{k m} = s_k \cos\left(\frac{\pi k (m + 1/2)}{M}\right),\quad
              s_0 = \sqrt{1/M},\ s_{k>0} = \sqrt{2/M}

    Returns:
        float64 tensor of shape ``(n_mfcc, n_mels)``.
    """
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    m = torch.arange(n_mels, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * k * (m + 0.5) / n_mels)  # (n_mfcc, M)
    scale = torch.full((n_mfcc, 1), math.sqrt(2.0 / n_mels), dtype=torch.float64)
    scale[0] = math.sqrt(1.0 / n_mels)
    return basis * scale
