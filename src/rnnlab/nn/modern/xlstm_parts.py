"""What the xLSTM layers (sLSTM, mLSTM) share: the stack, directions, lengths and states.

A layer here subclasses :class:`XLSTMLayer` and supplies three things: the per-row state
shapes (``state_shapes``), one direction of one layer over a whole sequence
(``_direction``) and one step of one layer (``_cell_step``). The driver owns the rest, as
``rnnlab.nn.recurrent`` does for the classic layers:

- input ``(T, B, I)``, ``(B, T, I)`` with ``batch_first``, unbatched ``(T, I)``, or a
  ``PackedSequence`` (which gives a ``PackedSequence`` back);
- ``lengths``: a padded step leaves the state unchanged and its output is zero, so the
  returned state is each sequence's state at its own last step; the reverse direction
  starts at that step (each sequence is reversed within its length, not over ``T``);
- ``num_layers`` stacked, ``dropout`` between layers in training, ``bidirectional`` (the
  two directions' outputs concatenated, forward first);
- the state: a tuple of tensors named by ``state_names``, each with leading dimension
  ``num_layers * num_directions`` (row ``layer * D + direction``, as torch orders ``h_n``),
  then the batch (left out for an unbatched input), then the cell's own shape;
- ``step(x_t, state)``: one time step of the (unidirectional) stack, for generation and
  streaming; it gives the same outputs and state as ``forward`` over the steps one by one.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnlab.nn import validation

XState = tuple[Tensor, ...]
Lengths = Tensor | list[int] | tuple[int, ...]


def reverse_within(x: Tensor, lengths: Tensor | None) -> Tensor:
    """``x`` ``(T, B, ...)`` with each sequence's first ``lengths[b]`` steps reversed.

    Padded steps stay where they are, so a padded batch runs backwards from each sequence's
    own last step. The map is its own inverse.
    """
    if lengths is None:
        return x.flip(0)
    steps, batch = x.shape[0], x.shape[1]
    time = torch.arange(steps).unsqueeze(1)  # (T, 1)
    index = torch.where(time < lengths, lengths - 1 - time, time)  # (T, B)
    index = index.to(x.device).view(steps, batch, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


def valid_mask(lengths: Tensor | None, steps: int, device: torch.device) -> Tensor | None:
    """``(T, B)`` bool, true at the steps inside each sequence (``None``: all of them)."""
    if lengths is None:
        return None
    return (torch.arange(steps).unsqueeze(1) < lengths.unsqueeze(0)).to(device)


def forget_bias_init(size: int, exp_forget: bool) -> Tensor:
    """The forget-gate bias xLSTM starts from: evenly spaced in ``[3, 6]`` for a sigmoid gate
    (``f`` near 1, long memories); 0 for an exponential gate (``f = exp(0) = 1``)."""
    if exp_forget:
        return torch.zeros(size)
    return torch.linspace(3.0, 6.0, size) if size > 1 else torch.full((1,), 3.0)


class XLSTMLayer(nn.Module):
    """Stack, directions, lengths and state handling of the xLSTM layers (not used alone)."""

    state_names: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        num_heads: int,
    ) -> None:
        super().__init__()
        validation.check_size("input_size", input_size)
        validation.check_size("hidden_size", hidden_size)
        validation.check_size("num_layers", num_layers)
        validation.check_size("num_heads", num_heads)
        validation.check_probability("dropout", dropout)
        if hidden_size % num_heads:
            raise ValueError(
                f"hidden_size={hidden_size} must be a multiple of num_heads={num_heads}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads

    # ------------------------------------------------------------------ what a layer supplies

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shape of each state tensor for one row and one sequence (after ``(L*D, B)``)."""
        raise NotImplementedError

    def _direction(
        self, layer: int, reverse: bool, x: Tensor, state: XState, valid: Tensor | None
    ) -> tuple[Tensor, XState]:
        """One direction of one layer: ``x`` ``(T, B, I)`` -> ``(T, B, H)`` and its state."""
        raise NotImplementedError

    def _cell_step(self, layer: int, x: Tensor, state: XState) -> tuple[Tensor, XState]:
        """One step of one (forward-direction) layer: ``x`` ``(B, I)`` -> ``(B, H)``, state."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self) -> list[str]:
        directions = ["", "_reverse"] if self.bidirectional else [""]
        return [f"_l{layer}{d}" for layer in range(self.num_layers) for d in directions]

    def _layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.hidden_size * self.num_directions

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> XState:
        """The zero state, each tensor ``(num_layers * num_directions, batch, ...)``."""
        like = next(self.parameters())
        rows = self.num_layers * self.num_directions
        return tuple(
            torch.zeros(
                rows, batch, *shape, device=device or like.device, dtype=dtype or like.dtype
            )
            for shape in self.state_shapes()
        )

    def _check_state(self, hx: Any, lead: tuple[int, ...]) -> None:
        name = type(self).__name__
        names = self.state_names
        if not isinstance(hx, (tuple, list)) or len(hx) != len(names):
            raise ValueError(
                f"{name}: hx must be a tuple of {len(names)} tensors {names}, "
                f"got {type(hx).__name__}"
            )
        for label, tensor, shape in zip(names, hx, self.state_shapes(), strict=True):
            validation.check_state(f"{name}: hx {label}", tensor, (*lead, *shape))

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: XState | None = None,
        lengths: Lengths | None = None,
    ) -> tuple[Tensor | PackedSequence, XState]:
        """Run the stack over a sequence.

        Args:
            input: ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``), unbatched ``(T, I)``,
                or a ``PackedSequence``.
            hx: initial state, a tuple named by ``state_names``, each
                ``(num_layers * num_directions, B, ...)`` (no ``B`` when unbatched); zeros
                when omitted.
            lengths: per-sequence lengths of a padded batch, each in ``[1, T]``.

        Returns:
            ``output`` ``(T, B, D * H)`` (in the input's layout; a ``PackedSequence`` for a
            packed input) and the final state, shaped as ``hx``.
        """
        name = type(self).__name__
        packed = input if isinstance(input, PackedSequence) else None
        rows = self.num_layers * self.num_directions
        if packed is not None:
            if lengths is not None:
                raise ValueError(
                    f"{name}: pass lengths only with a padded tensor, not with a PackedSequence"
                )
            validation.check_input(name, packed.data, self.input_size, (2,))
            x, packed_lengths = pad_packed_sequence(packed)  # (T, B, I), in batch order
            checked: Tensor | None = packed_lengths
            batched = True
        else:
            tensor = cast(Tensor, input)
            validation.check_input(name, tensor, self.input_size, (2, 3))
            batched = tensor.dim() == 3
            if not batched:
                if lengths is not None:
                    raise ValueError(f"{name}: lengths needs a batched 3-D input, got 2-D")
                x = tensor.unsqueeze(1)
            else:
                x = tensor.transpose(0, 1) if self.batch_first else tensor
            checked = (
                None
                if lengths is None
                else validation.check_lengths(lengths, x.shape[1], x.shape[0])
            )
        steps, batch = x.shape[0], x.shape[1]
        if hx is None:
            state = self.init_state(batch, x.device, x.dtype)
        else:
            self._check_state(hx, (rows, batch) if batched else (rows,))
            state = tuple(hx) if batched else tuple(s.unsqueeze(1) for s in hx)
        valid = valid_mask(checked, steps, x.device)
        layer_input = x
        finals: list[XState] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                row = layer * self.num_directions + direction
                reverse = direction == 1
                run_input = reverse_within(layer_input, checked) if reverse else layer_input
                out, final = self._direction(
                    layer, reverse, run_input, tuple(s[row] for s in state), valid
                )
                outputs.append(reverse_within(out, checked) if reverse else out)
                finals.append(final)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        new_state = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
        if packed is not None:
            return _repack(layer_input, packed_lengths, packed), new_state
        if not batched:
            return layer_input.squeeze(1), tuple(s.squeeze(1) for s in new_state)
        output = layer_input.transpose(0, 1) if self.batch_first else layer_input
        return output, new_state

    def step(self, x: Tensor, state: XState | None = None) -> tuple[Tensor, XState]:
        """One time step of the stack, for generation and streaming.

        Args:
            x: ``(B, I)``, or ``(I,)`` unbatched.
            state: as ``forward``'s ``hx`` (zeros when omitted).

        Returns:
            the step's output ``(B, H)`` and the new state; feeding ``forward``'s steps one
            by one gives ``forward``'s outputs and final state.
        """
        name = type(self).__name__
        if self.bidirectional:
            raise ValueError(f"{name}: step() runs forward in time; a bidirectional layer cannot")
        validation.check_input(name, x, self.input_size, (1, 2))
        batched = x.dim() == 2
        xb = x if batched else x.unsqueeze(0)
        if state is None:
            rows = self.init_state(xb.shape[0], xb.device, xb.dtype)
        else:
            self._check_state(
                state, (self.num_layers, xb.shape[0]) if batched else (self.num_layers,)
            )
            rows = tuple(state) if batched else tuple(s.unsqueeze(1) for s in state)
        finals: list[XState] = []
        out = xb
        for layer in range(self.num_layers):
            out, final = self._cell_step(layer, out, tuple(s[layer] for s in rows))
            finals.append(final)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                out = F.dropout(out, self.dropout, training=True)
        new_state = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
        if not batched:
            return out.squeeze(0), tuple(s.squeeze(1) for s in new_state)
        return out, new_state

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}, num_heads={self.num_heads}"
        for label, value, default in (
            ("num_layers", self.num_layers, 1),
            ("bias", self.bias, True),
            ("batch_first", self.batch_first, False),
            ("dropout", self.dropout, 0.0),
            ("bidirectional", self.bidirectional, False),
        ):
            if value != default:
                text += f", {label}={value}"
        return text


def _repack(output: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack ``output`` ``(T, B, H)`` (batch order) with the same ordering as ``like``."""
    if like.sorted_indices is not None:
        output = output.index_select(1, like.sorted_indices)
        lengths = lengths[like.sorted_indices.cpu()]
    packed = pack_padded_sequence(output, lengths, enforce_sorted=True)
    return PackedSequence(
        packed.data, packed.batch_sizes, like.sorted_indices, like.unsorted_indices
    )
