"""What minGRU, minLSTM and IndRNN share: options, parameters, lengths, directions, stacking.

A layer here is a stack of element-wise recurrences whose only matrix multiply is the input
projection ``p_t = W x_t + b``, done for all steps at once (one ``F.linear`` over ``(T, B,
I)``); the time loop is then a scan over ``p`` (:mod:`rnnlab.nn.modern.scan`). A subclass
says how many pre-activation blocks its cell has (:attr:`ModernLayer.blocks`), how one step
maps ``p_t, h_{t-1}`` to ``h_t`` (:meth:`ModernLayer.cell_step`, the sequential form) and
how a whole direction runs (:meth:`ModernLayer.scan_direction`, the parallel form).

Parameters per layer ``k`` and direction (suffix ``_l{k}``, ``_l{k}_reverse``):
``weight_ih`` ``(K H, I_k)`` and, with ``bias``, ``bias_ih`` ``(K H)``, both uniform in
``+-1/sqrt(I_k)`` (as ``torch.nn.Linear``); ``I_k`` is ``input_size`` for layer 0 and
``D H`` above. Subclasses add their own (IndRNN's ``weight_hh``).

Padded steps (past a sequence's length) leave the state unchanged and give zero outputs;
the reverse direction starts at each sequence's own last step; ``h_n`` holds the state
after each sequence's last step (step 0 for the reverse direction). A ``PackedSequence`` in
gives a ``PackedSequence`` out.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnlab.nn import validation
from rnnlab.nn.modern import scan

Lengths = Tensor | list[int] | tuple[int, ...]


class ModernLayer(nn.Module):
    """Base of the parallel-in-time layers; not used on its own.

    Args:
        input_size: features per step.
        hidden_size: state size ``H`` per direction.
        num_layers: stacked layers.
        bias: learn ``bias_ih``.
        batch_first: input and output ``(B, T, *)`` instead of ``(T, B, *)``.
        dropout: dropout on the outputs of every layer but the last (training only).
        bidirectional: a second, reversed direction per layer; outputs concatenated.
    """

    blocks: ClassVar[int]
    """Pre-activation blocks of ``H`` in the projection (minGRU 2, minLSTM 3, IndRNN 1)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        validation.check_size("input_size", input_size)
        validation.check_size("hidden_size", hidden_size)
        validation.check_size("num_layers", num_layers)
        validation.check_probability("dropout", dropout)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        self.directions = 2 if bidirectional else 1
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else self.directions * hidden_size
            for suffix in self._suffixes(layer):
                rows = self.blocks * hidden_size
                self.register_parameter(
                    f"weight_ih{suffix}", nn.Parameter(torch.empty(rows, fan_in, **factory))
                )
                if self.bias:
                    self.register_parameter(
                        f"bias_ih{suffix}", nn.Parameter(torch.empty(rows, **factory))
                    )
                self._register_recurrent(suffix, factory)
        self.reset_parameters()

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def _register_recurrent(self, suffix: str, factory: dict[str, Any]) -> None:
        """Parameters beyond the projection (none here)."""

    def reset_parameters(self) -> None:
        """``weight_ih`` and ``bias_ih`` uniform in ``+-1/sqrt(fan_in)``."""
        for name, param in self.named_parameters(recurse=False):
            if name.startswith(("weight_ih", "bias_ih")):
                fan_in = getattr(self, "weight_ih" + name.split("_ih", 1)[1]).shape[1]
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(param, -bound, bound)

    # ----------------------------------------------------------------------------- cell

    def cell_step(self, pre: Tensor, h: Tensor, suffix: str) -> Tensor:
        """``h_t`` from ``p_t (B, K H)`` and ``h_{t-1} (B, H)``: the sequential form."""
        raise NotImplementedError

    def scan_direction(
        self,
        pre: Tensor,
        h0: Tensor,
        lengths: Tensor | None,
        reverse: bool,
        suffix: str,
    ) -> tuple[Tensor, Tensor]:
        """``out (T, B, H), h_n (B, H)`` of one direction from ``pre (T, B, K H)``."""
        raise NotImplementedError

    def _projection(self, x: Tensor, suffix: str) -> Tensor:
        weight = cast(Tensor, getattr(self, f"weight_ih{suffix}"))
        bias = cast(Tensor, getattr(self, f"bias_ih{suffix}")) if self.bias else None
        return F.linear(x, weight, bias)

    def explain(self, batch: int | None = None) -> str:
        """Which implementation of the time loop runs, in one sentence."""
        name = type(self).__name__
        weight = cast(Tensor, self.weight_ih_l0)
        if scan.use_native(weight):
            return (
                f"{name}: one input projection for all steps, then rnnlab's native fused scan "
                f"(csrc/scan.cpp, {scan.native_status()}), forward and backward"
            )
        why = (
            "inside native.python_loops()"
            if scan.native.python_forced()
            else f"{weight.device.type} {weight.dtype} parameters"
            if weight.device.type != "cpu" or weight.dtype not in (torch.float32, torch.float64)
            else f"native scan {scan.native_status()}"
        )
        return (
            f"{name}: one input projection for all steps, then the PyTorch scan loop over "
            f"time ({why})"
        )

    # ----------------------------------------------------------------------------- forward

    def _rows(self) -> int:
        return self.num_layers * self.directions

    def _check_state(self, hx: Tensor | None, lead: tuple[int, ...]) -> None:
        if hx is not None:
            name = f"{type(self).__name__}: h_0"
            validation.check_state(name, hx, (*lead, self.hidden_size))

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Tensor | None = None,
        lengths: Lengths | None = None,
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        """Run the layer.

        Args:
            input: ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``), unbatched ``(T, I)``,
                or a ``PackedSequence``.
            hx: initial state ``(L * D, B, H)`` (``(L * D, H)`` unbatched); zeros if omitted.
            lengths: per-sequence lengths of a padded batch, each in ``[1, T]``.

        Returns:
            ``output`` ``(T, B, D H)`` (as the input is laid out) and ``h_n`` ``(L * D, B, H)``.
        """
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(f"{name}: pass lengths only with a padded tensor, not packed")
            validation.check_input(name, input.data, self.input_size, (2,))
            padded, packed_lengths = pad_packed_sequence(input, batch_first=self.batch_first)
            batch = padded.shape[0 if self.batch_first else 1]
            self._check_state(hx, (self._rows(), batch))
            # padded, its lengths, hx and h_n are all in the caller's batch order (as torch's)
            output, h_n = self._run(padded, hx, packed_lengths)
            return _repack(output, packed_lengths, input, self.batch_first), h_n
        validation.check_input(name, input, self.input_size, (2, 3))
        if input.dim() == 2:
            if lengths is not None:
                raise ValueError(f"{name}: lengths needs a batched 3-D input, got 2-D")
            self._check_state(hx, (self._rows(),))
            batch_dim = 0 if self.batch_first else 1
            output, h_n = self._run(
                input.unsqueeze(batch_dim), None if hx is None else hx.unsqueeze(1), None
            )
            return output.squeeze(batch_dim), h_n.squeeze(1)
        steps, batch = input.shape[:2] if not self.batch_first else input.shape[1::-1]
        self._check_state(hx, (self._rows(), batch))
        checked = None if lengths is None else validation.check_lengths(lengths, batch, steps)
        return self._run(input, hx, checked)

    def _run(self, x: Tensor, hx: Tensor | None, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """Every layer and direction over a batched input, in the input's own layout."""
        batch = x.shape[0 if self.batch_first else 1]
        if hx is None:
            hx = x.new_zeros(self._rows(), batch, self.hidden_size)
        layer_input = x  # (B, T, *) or (T, B, *), as given
        h_last: list[Tensor] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                pre = self._projection(layer_input, suffix)  # (.., .., K H)
                pre_tb = pre.transpose(0, 1) if self.batch_first else pre  # (T, B, K H) view
                out, h_n = self.scan_direction(
                    pre_tb,
                    hx[layer * self.directions + direction],
                    lengths,
                    direction == 1,
                    suffix,
                )
                outputs.append(out.transpose(0, 1) if self.batch_first else out)
                h_last.append(h_n)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, torch.stack(h_last)

    # ----------------------------------------------------------------------------- step

    def step(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One time step, for generation and streaming: same numbers as :meth:`forward`.

        Args:
            input: ``(B, I)`` (or ``(I,)``), the features of one step.
            hx: the state ``(L, B, H)`` (``(L, H)``), e.g. ``h_n`` of an earlier call; zeros
                when omitted.

        Returns:
            ``output (B, H), h (L, B, H)``: the last layer's output and the new state.

        Raises:
            ValueError: for a bidirectional layer (its reverse direction needs the future).
        """
        name = type(self).__name__
        if self.bidirectional:
            raise ValueError(f"{name}: step() needs bidirectional=False (reverse sees the future)")
        validation.check_input(name, input, self.input_size, (1, 2))
        unbatched = input.dim() == 1
        if unbatched:
            input = input.unsqueeze(0)
            hx = None if hx is None else hx.unsqueeze(1)
        if hx is None:
            hx = input.new_zeros(self.num_layers, input.shape[0], self.hidden_size)
        self._check_state(hx, (self.num_layers, input.shape[0]))
        layer_input, states = input, []
        for layer in range(self.num_layers):
            suffix = f"_l{layer}"
            h = self.cell_step(self._projection(layer_input, suffix), hx[layer], suffix)
            states.append(h)
            layer_input = h
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        state = torch.stack(states)
        if unbatched:
            return layer_input.squeeze(0), state.squeeze(1)
        return layer_input, state

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        for name, value, default in (
            ("num_layers", self.num_layers, 1),
            ("bias", self.bias, True),
            ("batch_first", self.batch_first, False),
            ("dropout", self.dropout, 0.0),
            ("bidirectional", self.bidirectional, False),
        ):
            if value != default:
                text += f", {name}={value}"
        return text


def _repack(
    output: Tensor, lengths: Tensor, like: PackedSequence, batch_first: bool
) -> PackedSequence:
    """``output`` (original batch order) packed with the ordering of ``like``."""
    batch_dim = 0 if batch_first else 1
    if like.sorted_indices is not None:
        output = output.index_select(batch_dim, like.sorted_indices)
        lengths = lengths[like.sorted_indices.cpu()]
    packed = pack_padded_sequence(output, lengths, batch_first, enforce_sorted=True)
    return PackedSequence(
        packed.data, packed.batch_sizes, like.sorted_indices, like.unsorted_indices
    )
