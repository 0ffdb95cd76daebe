"""``SequenceModel(encoder, recurrent, head)`` and its construction from the model config.

Data flow (batch first)::

    x: (B, T, F) or tokens (B, T) --encoder--> (B, T, I) --recurrent--> outputs (B, T, D*H)
                                                                        h_n (L*D, B, H)
    head(outputs, final = top layer's h_n of each direction (B, D*H), lengths) -> predictions
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from rnnlab.config import ModelConfig
from rnnlab.models.stack import build_recurrent
from rnnlab.nn.cells import CellMixin
from rnnlab.nn.recurrent import RecurrentLayer

State = Tensor | tuple[Tensor, Tensor]


class SequenceModel(nn.Module):
    """Encoder, recurrent stack and head, batch first.

    Args:
        encoder: maps the input to ``(B, T, I)`` (``nn.Identity``, a linear projection, an
            embedding).
        recurrent: a batch-first layer with the torch.nn RNN call (a registered cell).
        head: a module called as ``head(outputs, final, lengths)`` (see ``rnnlab.models.heads``).

    Example:
        >>> import torch, rnnlab
        >>> from rnnlab.models import RegressionHead, SequenceModel
        >>> model = SequenceModel(torch.nn.Identity(), rnnlab.GRU(2, 8, batch_first=True),
        ...                       RegressionHead(8, 1))
        >>> prediction, state = model(torch.randn(4, 10, 2))
        >>> prediction.shape
        torch.Size([4, 1])
    """

    def __init__(self, encoder: nn.Module, recurrent: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.recurrent = recurrent
        self.head = head

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, state: State | None = None
    ) -> tuple[Tensor, State]:
        """Run the model; returns the head's predictions and the recurrent state ``h_n``
        (``(h_n, c_n)`` for LSTM), for tasks that carry it to the next batch."""
        features = self.encoder(x)  # (B, T, I)
        outputs, new_state = self.recurrent(features, state, lengths=lengths)  # (B, T, D*H)
        h_n = new_state[0] if isinstance(new_state, tuple) else new_state  # (L*D, B, H_out)
        directions = 2 if getattr(self.recurrent, "bidirectional", False) else 1
        final = torch.cat(list(h_n[-directions:]), dim=-1)  # (B, D*H_out)
        return self.head(outputs, final, lengths), new_state

    def output_size(self) -> int:
        """Size of the recurrent output ``D*H_out``."""
        return recurrent_output_size(self.recurrent)


def recurrent_output_size(layer: nn.Module) -> int:
    """``D * H_out`` of a torch.nn-style recurrent layer (``proj_size`` when set)."""
    hidden = getattr(layer, "proj_size", 0) or int(getattr(layer, "hidden_size"))  # noqa: B009
    return hidden * (2 if getattr(layer, "bidirectional", False) else 1)


def build_encoder(
    config: ModelConfig, num_features: int | None, vocab_size: int | None
) -> tuple[nn.Module, int]:
    """The encoder for real-valued features (identity or ``model.input_projection``) or for
    tokens (an embedding of ``model.embedding_size``, default ``hidden_size``).

    Returns:
        The encoder and the size of its output (the recurrent input size).
    """
    if vocab_size is not None:
        size = config.embedding_size or config.hidden_size
        return nn.Embedding(vocab_size, size), size
    if num_features is None:
        raise ValueError("build_encoder needs num_features or vocab_size")
    if config.input_projection is not None:
        return nn.Linear(num_features, config.input_projection), config.input_projection
    return nn.Identity(), num_features


def init_uniform_(model: nn.Module, init_range: float) -> None:
    """Set every parameter uniform in ``[-init_range, init_range]`` (Zaremba et al. 2014).

    rnnlab layers and cells then re-apply their extras' initialization (layer-norm gains 1
    and biases 0, ``forget_bias``), which a uniform draw would undo.
    """
    with torch.no_grad():
        for param in model.parameters():
            param.uniform_(-init_range, init_range)
    for module in model.modules():
        if isinstance(module, RecurrentLayer | CellMixin):
            module._init_extras()


def build_sequence_model(
    config: ModelConfig,
    num_features: int | None,
    vocab_size: int | None,
    make_head: Callable[[int], nn.Module],
) -> SequenceModel:
    """Encoder, recurrent stack and head from the model config, initialized as it says.

    Args:
        config: the ``[model]`` section.
        num_features, vocab_size: the input, real-valued features or token vocabulary.
        make_head: builds the head from the recurrent output size ``D * H_out``.
    """
    encoder, input_size = build_encoder(config, num_features, vocab_size)
    recurrent = build_recurrent(config, input_size)
    model = SequenceModel(encoder, recurrent, make_head(recurrent_output_size(recurrent)))
    if config.init_range is not None:
        init_uniform_(model, config.init_range)
    return model
