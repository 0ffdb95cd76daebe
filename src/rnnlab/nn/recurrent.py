"""What RNN, LSTM and GRU share: lengths, extras, state checks and kernel routing.

Each layer subclasses its ``torch.nn`` counterpart, so the constructor, the call, the
parameter names and shapes (``weight_ih_l0``, ``weight_hh_l0_reverse``, ``weight_hr_l0``...),
the gate order, the initialization and the outputs are torch's own, and
``layer.load_state_dict(torch_layer.state_dict())`` gives the same numbers. On top of that:

- ``forward(input, hx=None, lengths=None)``: a padded batch with per-sequence lengths.
  Outputs past a sequence's length are zero; ``h_n`` holds the state at each sequence's own
  last step; the reverse direction starts at that step. A ``PackedSequence`` in gives a
  ``PackedSequence`` out, as in torch.
- Extras that torch.nn lacks, keyword options combinable with every torch option:
  ``layer_norm`` (Ba et al. 2016), ``recurrent_dropout`` (Gal and Ghahramani 2016),
  ``zoneout`` (Krueger et al. 2017), ``weight_drop`` (DropConnect on ``W_hh``, as in
  AWD-LSTM) and, for LSTM, ``forget_bias``. Their definitions are in
  ``rnnlab.nn.regularizers`` and ``rnnlab.nn.steps``.
- ``explain()``: which kernel runs and why (``rnnlab.nn.kernels``).

This module holds what the three layers share (:class:`RecurrentLayer`); the layers
themselves, with their equations, are in ``rnnlab.nn.layers``. Layers with step-changing
extras run rnnlab's fused BPTT (``rnnlab.nn.fused_bptt``, one autograd node per direction
and layer); the reference time loop it is tested against, one direction of one layer step by
step, is ``rnnlab.nn.directions.reference_direction``, and ``rnnlab.nn.force_loop()`` runs it.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnlab.nn import regularizers, validation
from rnnlab.nn.directions import fused_direction, reference_direction
from rnnlab.nn.kernels import KernelChoice, select_kernel
from rnnlab.nn.steps import StepWeights

_NOT_CONTIGUOUS = "RNN module weights are not part of single contiguous chunk of memory"

State = Tensor | tuple[Tensor, Tensor]
Lengths = Tensor | list[int] | tuple[int, ...]


class RecurrentLayer(nn.RNNBase):
    """What RNN, LSTM and GRU share: state checks, lengths, extras, kernel routing.

    Not used on its own: the concrete layers put it before their ``torch.nn`` class, so that
    ``super().forward`` is torch's fused forward.
    """

    family: ClassVar[str]
    gates: ClassVar[int]

    layer_norm: bool
    recurrent_dropout: float
    zoneout: float
    weight_drop: float
    forget_bias: float | None

    def _setup_extras(
        self,
        layer_norm: bool,
        recurrent_dropout: float,
        zoneout: float,
        weight_drop: float,
        forget_bias: float | None,
        factory: dict[str, Any],
    ) -> None:
        validation.check_probability("recurrent_dropout", recurrent_dropout)
        validation.check_probability("zoneout", zoneout)
        validation.check_probability("weight_drop", weight_drop)
        if forget_bias is not None and not self.bias:
            raise ValueError(f"forget_bias={forget_bias} needs bias=True")
        self.layer_norm = bool(layer_norm)
        self.recurrent_dropout = float(recurrent_dropout)
        self.zoneout = float(zoneout)
        self.weight_drop = float(weight_drop)
        self.forget_bias = None if forget_bias is None else float(forget_bias)
        if self.layer_norm:
            for suffix in self._suffixes():
                self._register_norm("ih", self.gates * self.hidden_size, suffix, factory)
                self._register_norm("hh", self.gates * self.hidden_size, suffix, factory)
                if self.family == "lstm":
                    self._register_norm("c", self.hidden_size, suffix, factory)
        self._init_extras()

    def _register_norm(self, where: str, size: int, suffix: str, factory: dict[str, Any]) -> None:
        self.register_parameter(
            f"ln_{where}_weight{suffix}", nn.Parameter(torch.ones(size, **factory))
        )
        self.register_parameter(
            f"ln_{where}_bias{suffix}", nn.Parameter(torch.zeros(size, **factory))
        )

    def _suffixes(self) -> list[str]:
        directions = ["", "_reverse"] if self.bidirectional else [""]
        return [f"_l{layer}{d}" for layer in range(self.num_layers) for d in directions]

    def reset_parameters(self) -> None:
        """torch's initialization (uniform in ``+-1/sqrt(hidden_size)``), then the extras'.

        Layer-norm gains start at 1 and biases at 0; with ``forget_bias`` the forget-gate
        slice of ``bias_ih`` is set to it and that of ``bias_hh`` to 0.
        """
        super().reset_parameters()
        self._init_extras()

    def _init_extras(self) -> None:
        for name, param in self.named_parameters(recurse=False):
            if name.startswith("ln_"):
                with torch.no_grad():
                    param.fill_(1.0 if "_weight" in name else 0.0)
        forget_bias = getattr(self, "forget_bias", None)
        if forget_bias is not None:
            hidden = self.hidden_size
            with torch.no_grad():
                for suffix in self._suffixes():
                    getattr(self, f"bias_ih{suffix}")[hidden : 2 * hidden].fill_(forget_bias)
                    getattr(self, f"bias_hh{suffix}")[hidden : 2 * hidden].zero_()

    # ----------------------------------------------------------------------------- routing

    def kernel(self, batch: int | None = None) -> KernelChoice:
        """The kernel the next forward call will run, in the current mode, for a batch size."""
        return select_kernel(self, batch)

    def explain(self, batch: int | None = None) -> str:
        """Which kernel runs and why, in words (for a batch size, where that matters)."""
        return self.kernel(batch).reason

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: State | None = None,
        lengths: Lengths | None = None,
    ) -> tuple[Tensor | PackedSequence, State]:
        """Run the layer.

        Args:
            input: ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``), unbatched ``(T, I)``, or
                a ``PackedSequence``.
            hx: initial state, ``(L * D, B, H_out)`` (for LSTM a pair ``(h_0, c_0)``, ``c_0``
                of shape ``(L * D, B, H)``); zeros when omitted.
            lengths: per-sequence lengths for a padded batch, each in ``[1, T]``.

        Returns:
            ``output, h_n`` (LSTM: ``output, (h_n, c_n)``) as torch.nn returns them.
        """
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            choice = self.kernel(int(input.batch_sizes[0]))
            if lengths is not None:
                raise ValueError(
                    f"{name}: pass lengths only with a padded tensor, not with a PackedSequence"
                )
            validation.check_input(name, input.data, self.input_size, (2,))
            self._check_state(hx, int(input.batch_sizes[0]), batched=True)
            if choice.fused:
                return self._forward_fused(input, hx, choice)
            padded, packed_lengths = pad_packed_sequence(input, batch_first=self.batch_first)
            output, state = self._forward_loop(padded, hx, packed_lengths, choice)
            return _repack(output, packed_lengths, input, self.batch_first), state

        validation.check_input(name, input, self.input_size, (2, 3))
        batched = input.dim() == 3
        time_dim, batch_dim = (1, 0) if self.batch_first else (0, 1)
        steps = input.shape[time_dim] if batched else input.shape[0]
        batch = input.shape[batch_dim] if batched else 1
        self._check_state(hx, batch, batched)
        choice = self.kernel(batch)
        checked_lengths = None
        if lengths is not None:
            if not batched:
                raise ValueError(f"{name}: lengths needs a batched 3-D input, got 2-D")
            checked_lengths = validation.check_lengths(lengths, batch, steps)

        if choice.fused:
            if checked_lengths is None:
                return self._forward_fused(input, hx, choice)
            packed = pack_padded_sequence(
                input, checked_lengths, self.batch_first, enforce_sorted=False
            )
            packed_out, state = self._forward_fused(packed, hx, choice)
            output, _ = pad_packed_sequence(
                cast(PackedSequence, packed_out), self.batch_first, total_length=steps
            )
            return output, state

        if not batched:
            input = input.unsqueeze(batch_dim)
            hx = _map_state(hx, lambda s: s.unsqueeze(1))
        output, state = self._forward_loop(input, hx, checked_lengths, choice)
        if not batched:
            output = output.squeeze(batch_dim)
            state = _map_state(state, lambda s: s.squeeze(1))
        return output, cast(State, state)

    def _forward_fused(
        self, input: Tensor | PackedSequence, hx: State | None, choice: KernelChoice
    ) -> tuple[Tensor | PackedSequence, State]:
        """torch's own forward, with ``W_hh`` DropConnect-masked for this call if asked."""
        if not choice.drop_connect:
            return super().forward(input, hx)
        self._update_flat_weights()
        stored = self._flat_weights
        self._flat_weights = [
            regularizers.drop_connect(w, self.weight_drop)
            if name.startswith("weight_hh") and w is not None
            else w
            for name, w in zip(self._flat_weights_names, stored, strict=True)
        ]
        try:
            with warnings.catch_warnings():
                # cuDNN compacts the weights when one is not in its flat buffer, and says so
                # at every call; with a fresh mask per call that is expected, not a fault.
                warnings.filterwarnings("ignore", message=_NOT_CONTIGUOUS, category=UserWarning)
                return super().forward(input, hx)
        finally:
            self._flat_weights = stored

    # ----------------------------------------------------------------------------- state

    def _out_size(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def _check_state(self, hx: State | None, batch: int, batched: bool) -> None:
        if hx is None:
            return
        rows = self.num_layers * (2 if self.bidirectional else 1)
        lead = (rows, batch) if batched else (rows,)
        if self.family == "lstm":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError(f"LSTM: hx must be a pair (h_0, c_0), got {type(hx).__name__}")
            validation.check_state("LSTM: h_0", hx[0], (*lead, self._out_size()))
            validation.check_state("LSTM: c_0", hx[1], (*lead, self.hidden_size))
        else:
            validation.check_state(
                f"{type(self).__name__}: h_0", cast(Tensor, hx), (*lead, self.hidden_size)
            )

    def _zero_state(self, batch: int, like: Tensor) -> tuple[Tensor, Tensor | None]:
        rows = self.num_layers * (2 if self.bidirectional else 1)
        h0 = like.new_zeros(rows, batch, self._out_size())
        c0 = like.new_zeros(rows, batch, self.hidden_size) if self.family == "lstm" else None
        return h0, c0

    # ----------------------------------------------------------------------------- own loop

    def _step_weights(self, suffix: str, drop_connect: bool) -> StepWeights:
        def get(name: str) -> Tensor:
            return cast(Tensor, getattr(self, name + suffix))

        def norm(where: str) -> tuple[Tensor, Tensor] | None:
            if not self.layer_norm:
                return None
            return get(f"ln_{where}_weight"), get(f"ln_{where}_bias")

        w_hh = get("weight_hh")
        if drop_connect:
            w_hh = regularizers.drop_connect(w_hh, self.weight_drop)
        return StepWeights(
            w_ih=get("weight_ih"),
            w_hh=w_hh,
            b_ih=get("bias_ih") if self.bias else None,
            b_hh=get("bias_hh") if self.bias else None,
            w_hr=get("weight_hr") if self.proj_size > 0 else None,
            ln_ih=norm("ih"),
            ln_hh=norm("hh"),
            ln_c=norm("c") if self.family == "lstm" else None,
        )

    def _forward_loop(
        self,
        input: Tensor,
        hx: State | None,
        lengths: Tensor | None,
        choice: KernelChoice,
    ) -> tuple[Tensor, State]:
        """rnnlab's own implementation for a batched padded input."""
        if choice.fused_bptt and torch.is_autocast_enabled(input.device.type):
            # Under mixed precision the input may arrive in bf16/fp16 while the fused BPTT's
            # buffers follow the parameters: run the recurrence in the parameters' dtype with
            # autocast off (as autocast does for the ops on its float32 list). A recurrence
            # accumulates its state over every step, where half precision loses the most.
            dtype = cast(Tensor, self.weight_hh_l0).dtype
            with torch.autocast(input.device.type, enabled=False):
                return self._forward_loop(
                    input.to(dtype), _map_state(hx, lambda s: s.to(dtype)), lengths, choice
                )
        x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
        steps, batch = x.shape[0], x.shape[1]
        if hx is None:
            h0, c0 = self._zero_state(batch, x)
        elif isinstance(hx, tuple | list):
            h0, c0 = hx[0], hx[1]
        else:
            h0, c0 = hx, None
        valid = None
        if lengths is not None:
            time = torch.arange(steps).unsqueeze(1)  # (T, 1)
            valid = (time < lengths.unsqueeze(0)).unsqueeze(-1).to(x.device)  # (T, B, 1)
        directions = 2 if self.bidirectional else 1
        layer_input = x
        h_last: list[Tensor] = []
        c_last: list[Tensor] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                row = layer * directions + direction
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                args = (layer_input, h0[row], None if c0 is None else c0[row])
                if choice.fused_bptt:  # DropConnect inside: the masked copy is not kept
                    weights = self._step_weights(suffix, drop_connect=False)
                    out, h_n, c_n = fused_direction(
                        self, *args, weights, direction == 1, valid, choice.drop_connect
                    )
                else:
                    weights = self._step_weights(suffix, choice.drop_connect)
                    out, h_n, c_n = reference_direction(self, *args, weights, direction == 1, valid)
                outputs.append(out)
                h_last.append(h_n)
                if c_n is not None:
                    c_last.append(c_n)
            layer_input = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output = layer_input.transpose(0, 1) if self.batch_first else layer_input
        h_n_all = torch.stack(h_last)
        if self.family == "lstm":
            return output, (h_n_all, torch.stack(c_last))
        return output, h_n_all

    def extra_repr(self) -> str:
        text = super().extra_repr()
        extras = [
            f"{name}={value}"
            for name, value, default in (
                ("layer_norm", self.layer_norm, False),
                ("recurrent_dropout", self.recurrent_dropout, 0.0),
                ("zoneout", self.zoneout, 0.0),
                ("weight_drop", self.weight_drop, 0.0),
                ("forget_bias", self.forget_bias, None),
            )
            if value != default
        ]
        return ", ".join([text, *extras])


def _map_state(state: Any, fn: Any) -> Any:
    if state is None:
        return None
    if isinstance(state, tuple | list):
        return tuple(fn(s) for s in state)
    return fn(state)


def _repack(
    output: Tensor, lengths: Tensor, like: PackedSequence, batch_first: bool
) -> PackedSequence:
    """Pack ``output`` (original batch order) with the same ordering as ``like``."""
    batch_dim = 0 if batch_first else 1
    if like.sorted_indices is not None:
        order = like.sorted_indices
        output = output.index_select(batch_dim, order)
        lengths = lengths[order.cpu()]
    packed = pack_padded_sequence(output, lengths, batch_first, enforce_sorted=True)
    return PackedSequence(
        packed.data, packed.batch_sizes, like.sorted_indices, like.unsorted_indices
    )
