"""Speech models over any recurrent layer: an utterance classifier and a CTC recognizer.

Both take a batch-first feature tensor from ``rnnlab.data.audio.FeatureExtractor`` and the
valid frames per utterance, and hand ``lengths=`` to the recurrent layer, so padding never
changes a result. The layer is any module with the ``torch.nn.RNN/LSTM/GRU`` call
(``layer(x, hx, lengths=...) -> (output, h_n)``): ``rnnlab.RNN``, ``LSTM`` or ``GRU`` with any
extras, bidirectional or not, stacked or not::

    features (B, T, F) --recurrent(lengths)--> outputs (B, T, D*H), h_n (L*D, B, H)

    SpeechClassifier: pool --> (B, D*H) --dropout, linear--> logits (B, num_classes)
        pooling="mean": mean of outputs over each utterance's valid frames
        pooling="last": top layer's final state, forward direction at the last valid frame
                        and reverse direction at frame 0, concatenated
    CTCModel:  outputs --dropout, linear, log_softmax--> log-probs (B, T, num_tokens + 1)

:class:`CTCHead` is the CTC output layer alone, with the head call of
``rnnlab.models.SequenceModel`` (``head(outputs, final, lengths)``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.models.sequence import recurrent_output_size

__all__ = ["CTCHead", "CTCModel", "SpeechClassifier", "final_state"]

Pooling = Literal["mean", "last"]


def final_state(h_n: Tensor | tuple[Tensor, Tensor], bidirectional: bool) -> Tensor:
    """The top layer's final hidden state, directions concatenated: ``(B, D*H)``.

    Args:
        h_n: ``(L*D, B, H)``, or the ``(h_n, c_n)`` pair of an LSTM.
        bidirectional: whether ``D = 2``.
    """
    h = h_n[0] if isinstance(h_n, tuple) else h_n  # (L*D, B, H)
    directions = 2 if bidirectional else 1
    return torch.cat(list(h[-directions:]), dim=-1)  # (B, D*H)


def _run(recurrent: nn.Module, features: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
    """Run a layer batch first; return outputs ``(B, T, D*H)`` and the final state."""
    if features.dim() != 3:
        raise ValueError(f"features must be (batch, frames, features), got {tuple(features.shape)}")
    batch_first = bool(getattr(recurrent, "batch_first", False))
    x = features if batch_first else features.transpose(0, 1)
    outputs, h_n = recurrent(x, None, lengths=lengths)
    if not batch_first:
        outputs = outputs.transpose(0, 1)  # (B, T, D*H)
    return outputs, final_state(h_n, bool(getattr(recurrent, "bidirectional", False)))


class SpeechClassifier(nn.Module):
    """Utterance classification (e.g. spoken digits): recurrent layer, pooling, linear.

    Args:
        recurrent: the recurrent layer (``input_size`` = features per frame).
        num_classes: number of classes.
        pooling: ``"mean"`` over valid frames or ``"last"`` (final state).
        dropout: dropout on the pooled vector.

    Example:
        >>> import torch, rnnlab
        >>> model = SpeechClassifier(rnnlab.GRU(13, 32, batch_first=True, bidirectional=True), 10)
        >>> model(torch.randn(4, 50, 13), lengths=torch.tensor([50, 40, 30, 20])).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        recurrent: nn.Module,
        num_classes: int,
        pooling: Pooling = "mean",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "last"):
            raise ValueError(f"pooling must be 'mean' or 'last', got {pooling!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.recurrent = recurrent
        self.pooling: Pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(recurrent_output_size(recurrent), num_classes)

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits ``(B, num_classes)`` for features ``(B, T, F)`` with valid ``lengths``."""
        outputs, final = _run(self.recurrent, features, lengths)  # (B, T, D*H), (B, D*H)
        if self.pooling == "last":
            pooled = final
        elif lengths is None:
            pooled = outputs.mean(dim=1)
        else:
            frames = lengths.to(outputs.device)
            valid = torch.arange(outputs.shape[1], device=outputs.device)[None, :] < frames[:, None]
            pooled = (outputs * valid[:, :, None]).sum(dim=1) / frames[:, None].to(outputs.dtype)
        return self.proj(self.dropout(pooled))  # (B, C)


class CTCHead(nn.Module):
    """Per-frame log-probabilities over ``num_classes`` (tokens and the blank).

    Called as ``head(outputs, final, lengths)`` like the heads of ``rnnlab.models``; only
    ``outputs`` is used.

    Args:
        in_features: the recurrent output size ``D*H``.
        num_classes: tokens plus one blank.
        dropout: dropout on the recurrent outputs.
    """

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(in_features, num_classes)

    def forward(self, outputs: Tensor, final: Tensor | None, lengths: Tensor | None) -> Tensor:
        return F.log_softmax(self.proj(self.dropout(outputs)), dim=-1)  # (B, T, C)


class CTCModel(nn.Module):
    """Connected speech recognition with CTC: recurrent layer and per-frame log-probs.

    Class ``blank`` is the CTC blank; the other ``num_tokens`` classes are the tokens (for
    digits with ``blank=0``: class ``d + 1`` is digit ``d``). Decode with
    ``rnnlab.speech.decode_batch``; the ``speech-ctc`` task uses :class:`CTCHead` on a
    ``rnnlab.models.SequenceModel`` instead.

    Args:
        recurrent: the recurrent layer (``input_size`` = features per frame).
        num_tokens: number of tokens, not counting the blank.
        blank: index of the blank class.
        dropout: dropout on the recurrent outputs.

    Example:
        >>> import torch, rnnlab
        >>> model = CTCModel(rnnlab.LSTM(13, 16, batch_first=True), num_tokens=10)
        >>> log_probs = model(torch.randn(2, 30, 13), lengths=torch.tensor([30, 20]))
        >>> log_probs.shape
        torch.Size([2, 30, 11])
    """

    def __init__(
        self, recurrent: nn.Module, num_tokens: int, blank: int = 0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
        if not 0 <= blank <= num_tokens:
            raise ValueError(f"blank must be a class index in [0, {num_tokens}], got {blank}")
        self.recurrent = recurrent
        self.blank = blank
        self.num_classes = num_tokens + 1
        self.head = CTCHead(recurrent_output_size(recurrent), self.num_classes, dropout)

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Log-probabilities ``(B, T, num_tokens + 1)`` for features ``(B, T, F)``."""
        outputs, final = _run(self.recurrent, features, lengths)
        return self.head(outputs, final, lengths)

    def loss(
        self, log_probs: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor
    ) -> Tensor:
        """Mean CTC loss (per target token, as ``torch.nn.functional.ctc_loss`` reduces).

        Args:
            log_probs: ``(B, T, C)`` from :meth:`forward`.
            lengths: ``(B,)`` valid frames.
            targets: ``(B, S)`` padded class indices (no blank) or their concatenation.
            target_lengths: ``(B,)`` target lengths.

        Returns:
            The scalar loss; infeasible alignments (target too long for the frames) give 0
            instead of infinity (``zero_infinity=True``).
        """
        return F.ctc_loss(
            log_probs.transpose(0, 1),  # (T, B, C)
            targets,
            lengths,
            target_lengths,
            blank=self.blank,
            reduction="mean",
            zero_infinity=True,
        )
