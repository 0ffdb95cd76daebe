"""Signal level of a recording in dB relative to full scale (dBFS).

Full scale is a sample value of 1.0, the limit of a float waveform in ``[-1, 1]`` as
:func:`rnnlab.data.audio.load_audio` returns it, so a full-scale sine peaks at 0 dBFS and
digital silence (all zeros) is ``-inf`` dBFS.
"""

from __future__ import annotations

import math

from torch import Tensor

__all__ = ["peak_dbfs"]


def peak_dbfs(samples: Tensor, *, remove_dc: bool = True) -> float:
    """The peak level ``20 log10(max |x|)`` of a waveform, in dBFS.

    Args:
        samples: the waveform, any shape (all samples count).
        remove_dc: subtract the mean first, so a constant offset (a DC bias of the
            converter, inaudible) does not count as signal.

    Returns:
        The level in dBFS; ``-inf`` when every sample is 0 (after removing the mean) or
        there are no samples.

    Example:
        >>> import torch
        >>> round(peak_dbfs(torch.tensor([0.0, 0.5, -0.5, 0.0])), 2)
        -6.02
        >>> peak_dbfs(torch.zeros(100))
        -inf
    """
    if samples.numel() == 0:
        return -math.inf
    x = samples.double()
    if remove_dc:
        x = x - x.mean()
    peak = float(x.abs().max())
    return 20.0 * math.log10(peak) if peak > 0.0 else -math.inf
