"""A recurrent language model: embedding, recurrent stack, decoder over the vocabulary.

::

    tokens (T, B) -> embedding (T, B, E) -> [embedding dropout: whole words, AWD-LSTM]
                  -> input dropout -> recurrent stack (T, B, H) -> output dropout
                  -> [projection H -> E when tied and H != E] -> decoder -> logits (T, B, V)

- *Embedding dropout* (Gal and Ghahramani 2016, as AWD-LSTM's ``dropoute``): in training,
  whole rows of the embedding matrix are zeroed with probability ``embedding_dropout`` (a word
  type vanishes everywhere in the batch) and the kept rows are scaled by ``1 / (1 - p)``.
- *Input / output dropout*: ordinary dropout on the embedded vectors and on the top layer's
  outputs; with ``variational=True`` one mask per sequence is reused at every time step
  (AWD-LSTM's locked dropout).
- *Weight tying* (Press and Wolf 2017; Inan et al. 2017): the decoder reuses the embedding
  matrix; when the recurrent output size differs from the embedding size a linear
  projection (no bias) maps one to the other.
- *Layer by layer* (AWD-LSTM): with ``hidden_dropout`` or ``last_hidden_size`` a ``[model]``
  stack is built one layer at a time (:class:`~rnnlab.language.layered.LayeredStack`):
  dropout between the layers with one mask per sequence when ``variational``, and a last
  layer of its own width (the embedding size: a tied decoder then needs no projection).
- *AR / TAR* (Merity et al. 2017): with ``record_activations`` set, a training forward keeps
  the top layer's outputs before and after the output dropout in ``activations``, for the
  task to add :func:`~rnnlab.language.regularization.activation_penalty` to the loss.
- *Initialization*: embedding, decoder and projection weights uniform in
  ``[-init_range, init_range]`` (Zaremba et al. 2014 use 0.1), decoder bias zero;
  ``recurrent_init_range`` does the same to the recurrent weights and biases (Zaremba's
  setting), else the layer keeps its own initialization.

Truncated BPTT: carry the returned state into the next window after :func:`detach_state`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.config import ModelConfig
from rnnlab.language.layered import LayeredStack
from rnnlab.language.regularization import drop_embedding_rows, locked_dropout
from rnnlab.models.stack import build_recurrent
from rnnlab.registry import CELLS

State = Tensor | tuple[Tensor, ...]


def detach_state(state: Any) -> Any:
    """The same state with every tensor cut from the graph (tensors, tuples, lists, None)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    raise ValueError(f"state must be a tensor or a tuple of tensors, got {type(state).__name__}")


def _check_p(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")


class LanguageModel(nn.Module):
    """Embedding, recurrent stack and (optionally tied) decoder.

    Args:
        vocab_size: number of tokens ``V``.
        embedding_size: embedding width ``E``.
        recurrent: a ``[model]`` section (:class:`~rnnlab.config.ModelConfig`), a layer
            class (``rnnlab.nn.LSTM``, ``torch.nn.GRU``...), a cell name registered in
            ``rnnlab.registry.CELLS`` (``"rnn"``, ``"lstm"``, ``"gru"``), or a built module.
            A section is built by :func:`rnnlab.models.stack.build_recurrent` (its cell,
            sizes and extras; ``hidden_size``, ``num_layers``, ``dropout`` and
            ``recurrent_kwargs`` given here override it). A class is called as
            ``recurrent(embedding_size, hidden_size, num_layers, dropout=dropout,
            batch_first=batch_first, **recurrent_kwargs)``. A module must take
            ``(input, state)``, return ``(output, state)``, use this model's ``batch_first``
            and have ``hidden_size`` (and ``proj_size`` if it projects).
        hidden_size: recurrent width ``H`` (needed with a class or name).
        num_layers: stacked layers (with a class or name: default 1).
        dropout: dropout between stacked recurrent layers (with a class or name: default 0).
        input_dropout: dropout on the embedded vectors.
        output_dropout: dropout on the top recurrent outputs.
        embedding_dropout: probability of dropping a word type (a whole embedding row).
        variational: input, output (and ``hidden_dropout``) dropout use one mask per
            sequence over time (locked dropout).
        hidden_dropout: dropout between recurrent layers, applied here (a ``[model]`` stack
            is then built layer by layer and the layers' own ``dropout`` is unused).
        last_hidden_size: width of the last recurrent layer (a ``[model]`` stack only; built
            layer by layer). Equal to ``embedding_size`` a tied decoder needs no projection.
        tie_weights: the decoder shares the embedding matrix.
        init_range: uniform range for embedding, decoder and projection weights.
        recurrent_init_range: if given, uniform range for the recurrent weights and biases.
        batch_first: tokens and logits are ``(B, T)`` / ``(B, T, V)``.
        **recurrent_kwargs: extra options for the recurrent class (``layer_norm``, ``zoneout``,
            ``weight_drop``, ``recurrent_dropout``, ``forget_bias``...).

    Example:
        >>> model = LanguageModel(100, 16, "lstm", hidden_size=32, num_layers=2, tie_weights=True)
        >>> logits, state = model(torch.randint(100, (35, 4)))
        >>> logits.shape, state[0].shape
        (torch.Size([35, 4, 100]), torch.Size([2, 4, 32]))
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        recurrent: ModelConfig | nn.Module | type[nn.Module] | str = "lstm",
        *,
        hidden_size: int | None = None,
        num_layers: int | None = None,
        dropout: float | None = None,
        input_dropout: float = 0.0,
        output_dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        variational: bool = False,
        hidden_dropout: float | None = None,
        last_hidden_size: int | None = None,
        tie_weights: bool = False,
        init_range: float = 0.1,
        recurrent_init_range: float | None = None,
        batch_first: bool = False,
        **recurrent_kwargs: Any,
    ) -> None:
        super().__init__()
        for name, size in (("vocab_size", vocab_size), ("embedding_size", embedding_size)):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {size!r}")
        for name, p in (
            ("input_dropout", input_dropout),
            ("output_dropout", output_dropout),
            ("embedding_dropout", embedding_dropout),
            ("hidden_dropout", hidden_dropout or 0.0),
        ):
            _check_p(name, p)
        if not init_range > 0:
            raise ValueError(f"init_range must be > 0, got {init_range!r}")
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.input_dropout = float(input_dropout)
        self.output_dropout = float(output_dropout)
        self.embedding_dropout = float(embedding_dropout)
        self.variational = bool(variational)
        self.batch_first = bool(batch_first)
        self.init_range = float(init_range)
        self.record_activations = False
        self.activations: tuple[Tensor, Tensor] | None = None
        self._layered = hidden_dropout is not None or last_hidden_size is not None
        self._hidden_dropout = hidden_dropout
        self._last_hidden_size = last_hidden_size

        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.recurrent = self._build_recurrent(
            recurrent, hidden_size, num_layers, dropout, recurrent_kwargs
        )
        self.output_size = self._recurrent_output_size(self.recurrent)
        self.tie_weights = bool(tie_weights)
        self.projection: nn.Linear | None = None
        decoder_in = self.output_size
        if self.tie_weights and self.output_size != embedding_size:
            self.projection = nn.Linear(self.output_size, embedding_size, bias=False)
            decoder_in = embedding_size
        self.decoder = nn.Linear(decoder_in, vocab_size)
        if self.tie_weights:
            self.decoder.weight = self.embedding.weight
        self.reset_parameters(recurrent_init_range)

    def _build_recurrent(
        self,
        recurrent: ModelConfig | nn.Module | type[nn.Module] | str,
        hidden_size: int | None,
        num_layers: int | None,
        dropout: float | None,
        kwargs: dict[str, Any],
    ) -> nn.Module:
        if isinstance(recurrent, nn.Module):
            if kwargs:
                raise ValueError(f"options {sorted(kwargs)} need a recurrent class, not a module")
            layout = getattr(recurrent, "batch_first", self.batch_first)
            if layout != self.batch_first:
                raise ValueError(
                    f"recurrent module has batch_first={layout}, the model {self.batch_first}"
                )
            module = recurrent
        elif self._layered:
            if not isinstance(recurrent, ModelConfig):
                raise ValueError(
                    "hidden_dropout and last_hidden_size need a [model] section (ModelConfig) "
                    f"to build the stack layer by layer, got {type(recurrent).__name__}"
                )
            if recurrent.proj_size:
                raise ValueError("a stack built layer by layer cannot use proj_size")
            config = (
                recurrent
                if num_layers is None
                else recurrent.model_copy(update={"num_layers": num_layers})
            )
            if hidden_size is not None:
                config = config.model_copy(update={"hidden_size": hidden_size})
            module = LayeredStack(
                config,
                self.embedding_size,
                self._last_hidden_size,
                dropout=self._hidden_dropout if self._hidden_dropout is not None else dropout,
                locked=self.variational,
                **kwargs,
            )
        elif isinstance(recurrent, ModelConfig):
            overrides = dict(kwargs)
            if num_layers is not None:
                overrides["num_layers"] = num_layers
            if dropout is not None:
                overrides["dropout"] = dropout
            module = build_recurrent(
                recurrent,
                self.embedding_size,
                hidden_size,
                batch_first=self.batch_first,
                **overrides,
            )
        else:
            if isinstance(recurrent, str):
                recurrent = CELLS.get(recurrent)  # unknown names: ConfigError listing the known
            if hidden_size is None:
                raise ValueError("hidden_size is required when the recurrent stack is built here")
            if kwargs.get("bidirectional"):
                raise ValueError("a language model cannot use a bidirectional recurrent layer")
            module = recurrent(
                self.embedding_size,
                hidden_size,
                1 if num_layers is None else num_layers,
                dropout=0.0 if dropout is None else dropout,
                batch_first=self.batch_first,
                **kwargs,
            )
        if getattr(module, "bidirectional", False):
            raise ValueError("a language model cannot use a bidirectional recurrent layer")
        return module

    @staticmethod
    def _recurrent_output_size(module: nn.Module) -> int:
        proj = getattr(module, "proj_size", 0) or 0
        hidden = getattr(module, "hidden_size", None)
        if proj:
            return int(proj)
        if not isinstance(hidden, int):
            raise ValueError(
                f"recurrent module {type(module).__name__} has no integer hidden_size attribute"
            )
        return hidden

    def reset_parameters(self, recurrent_init_range: float | None = None) -> None:
        """Uniform ``[-init_range, init_range]`` weights, zero decoder bias (module docstring)."""
        r = self.init_range
        nn.init.uniform_(self.embedding.weight, -r, r)
        if not self.tie_weights:
            nn.init.uniform_(self.decoder.weight, -r, r)
        nn.init.zeros_(self.decoder.bias)
        if self.projection is not None:
            nn.init.uniform_(self.projection.weight, -r, r)
        if recurrent_init_range is not None:
            if not recurrent_init_range > 0:
                raise ValueError(f"recurrent_init_range must be > 0, got {recurrent_init_range!r}")
            self._init_recurrent(float(recurrent_init_range))

    def _init_recurrent(self, r: float) -> None:
        stack = self.recurrent
        layers = list(stack.layers) if isinstance(stack, LayeredStack) else [stack]
        for layer in layers:
            self._init_layer(layer, r)

    @staticmethod
    def _init_layer(layer: nn.Module, r: float) -> None:
        forget_bias = getattr(layer, "forget_bias", None)
        hidden = getattr(layer, "hidden_size", 0)
        with torch.no_grad():
            for name, param in layer.named_parameters():
                if name.startswith("ln_") or ".ln_" in name:
                    continue  # layer-norm gains and biases keep 1 and 0
                param.uniform_(-r, r)
                if forget_bias is not None and name.startswith("bias_ih"):
                    param[hidden : 2 * hidden].fill_(forget_bias)
                elif forget_bias is not None and name.startswith("bias_hh"):
                    param[hidden : 2 * hidden].zero_()

    def _dropout(self, x: Tensor, p: float) -> Tensor:
        """Dropout on ``(T, B, F)`` or ``(B, T, F)``; one mask over time when variational."""
        if not self.training or p == 0.0:
            return x
        if not self.variational:
            return F.dropout(x, p, training=True)
        return locked_dropout(x, p, training=True, time_dim=1 if self.batch_first else 0)

    def embed(self, tokens: Tensor) -> Tensor:
        """Embedded tokens, with embedding dropout in training."""
        weight = drop_embedding_rows(  # (V, E): whole rows zeroed
            self.embedding.weight, self.embedding_dropout, training=self.training
        )
        return F.embedding(tokens, weight)

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits for the next token at every position.

        Args:
            tokens: ``(T, B)`` token ids (``(B, T)`` with ``batch_first``), ``int64``.
            state: the recurrent state from the previous window, or ``None`` for zeros.

        Returns:
            ``logits`` of shape ``(T, B, V)`` (``(B, T, V)`` batch-first) and the new state.
        """
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(
                f"tokens must be 2-D int64 ids, got {tokens.dim()}-D {tokens.dtype} "
                f"of shape {tuple(tokens.shape)}"
            )
        x = self._dropout(self.embed(tokens), self.input_dropout)  # (T, B, E)
        raw, state = self.recurrent(x, state)  # (T, B, H)
        output = self._dropout(raw, self.output_dropout)
        if self.record_activations and self.training:
            self.activations = (raw, output)  # for AR/TAR, read by the task's step
        if self.projection is not None:
            output = self.projection(output)  # (T, B, E)
        return self.decoder(output), state  # (T, B, V)


@dataclass(frozen=True)
class LMScore:
    """Token-weighted loss over a split: ``perplexity = exp(loss)``; ``bpc = loss / ln 2``."""

    loss: float
    tokens: int

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss)

    @property
    def bits_per_token(self) -> float:
        return self.loss / math.log(2.0)


@torch.no_grad()
def evaluate(model: LanguageModel, windows: Iterable[tuple[Tensor, Tensor]]) -> LMScore:
    """Mean cross-entropy per target token over consecutive windows, state carried.

    The model is put in eval mode for the call and restored after. Windows of different
    lengths count by their number of tokens, so the result is the mean over the split.
    """
    was_training = model.training
    model.eval()
    try:
        total, count, state = 0.0, 0, None
        device = next(model.parameters()).device
        for inputs, targets in windows:
            logits, state = model(inputs.to(device), state)
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                targets.to(device).reshape(-1),
                reduction="sum",
            )
            total += float(loss)
            count += targets.numel()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate needs at least one window with tokens")
    return LMScore(loss=total / count, tokens=count)
