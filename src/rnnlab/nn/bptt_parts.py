"""The pieces rnnlab's fused BPTT functions share: buffers, previous states, DropConnect.

Each family's autograd function (``rnnlab.nn.bptt_rnn``, ``bptt_lstm``, ``bptt_gru``)
allocates its ``(T, B, .)`` buffers, hands them to the time loops
(``rnnlab.nn.loop_backends``) and batches the weight gradients over all steps after the
loop::

    dW_hh = dA^T @ H_rec     dA: (T*B, G*H), H_rec: (T*B, H_out)   one matmul, all steps
    db_hh = sum of dA

What they share for that lives here: the layer-norm buffers, ``h_{t-1}`` of every step
(:class:`PreviousStates`, rebuilt from the outputs unless lengths are given), the layouts
the native loops read, and DropConnect applied inside the function (the mask, or its seed,
kept instead of a masked copy of ``W_hh``).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from rnnlab.nn import huge_pages
from rnnlab.nn.regularizers import SeededMask, apply_drop_connect
from rnnlab.nn.steps import Norm

Grads = tuple[Tensor | None, ...]


def norm_grad_buffers(
    like: Tensor, width: int, layer_norm: bool, needs: tuple[bool, ...]
) -> tuple[Tensor | None, Tensor | None]:
    """Output buffers ``(width,)`` for a layer norm's gain and bias gradients, where needed."""
    if not layer_norm:
        return None, None
    return (
        like.new_empty(width) if needs[0] else None,
        like.new_empty(width) if needs[1] else None,
    )


def split_norm(norm: Norm) -> tuple[Tensor | None, Tensor | None]:
    return (None, None) if norm is None else norm


def weight_grad(d_a_all: Tensor, inputs_all: Tensor) -> Tensor:
    """``sum_t dA_t^T @ X_t`` as one matmul: ``(N, T*B) @ (T*B, K)``."""
    return torch.mm(
        d_a_all.reshape(-1, d_a_all.shape[-1]).t(), inputs_all.reshape(-1, inputs_all.shape[-1])
    )


def sum_rows(grad_all: Tensor) -> Tensor:
    return grad_all.reshape(-1, grad_all.shape[-1]).sum(0)


def _previous_states(out: Tensor, h0: Tensor, reverse: bool) -> Tensor:
    """``h_{t-1}`` as step ``t`` saw it, rebuilt from the outputs (exact without lengths)."""
    earlier, later, first = _shift(reverse)
    states = huge_pages.empty_like(out)
    states[later].copy_(out[earlier])
    states[first].copy_(h0)
    return states


def _shift(reverse: bool) -> tuple[slice, slice, int]:
    """``(earlier, later, first)``: ``out[earlier]`` holds ``h_{t-1}`` of the steps
    ``later`` (in the same order); step ``first`` saw ``h0``."""
    if reverse:
        return slice(1, None), slice(None, -1), -1
    return slice(None, -1), slice(1, None), 0


def _flat(tensor: Tensor) -> Tensor:
    return tensor.reshape(-1, tensor.shape[-1])


class PreviousStates:
    """``h_{t-1}`` of every step, and ``h_rec_{t-1} = h_{t-1} * rec_mask`` as ``W_hh`` saw it.

    Forward keeps ``h_{t-1}`` only with lengths (past a sequence's end the state is held and
    differs from the output); otherwise it is the outputs shifted by one step, ``h0`` first.
    Nothing is copied until asked for: :meth:`weight_grad` multiplies by the shifted outputs
    in place where there is no mask, and :meth:`inputs` builds ``h_rec`` once, in one pass
    (a concatenation then a product would be two, and a plane more). A caller that built
    ``h_rec`` itself passes it as ``h_rec``.
    """

    def __init__(
        self,
        prevs: Tensor | None,
        out: Tensor | None,
        h0: Tensor | None,
        rec_mask: Tensor | None,
        reverse: bool,
        h_rec: Tensor | None = None,
    ) -> None:
        self._prevs, self._out, self._h0 = prevs, out, h0
        self._mask, self._reverse, self._h_rec = rec_mask, reverse, h_rec

    def states(self) -> Tensor:
        """``h_{t-1}`` of all steps ``(T, B, K)``: kept, or the outputs copied once, shifted."""
        if self._prevs is None:
            self._prevs = _previous_states(cast(Tensor, self._out), cast(Tensor, self._h0),
                                           self._reverse)  # fmt: skip
        return self._prevs

    def inputs(self) -> Tensor:
        """``h_rec_{t-1}`` of all steps ``(T, B, K)``, materialized in one pass."""
        if self._h_rec is None:
            if self._mask is None:
                self._h_rec = self.states()
            elif self._prevs is not None:
                self._h_rec = huge_pages.empty_like(self._prevs)
                torch.mul(self._prevs, self._mask, out=self._h_rec)
            else:  # straight from the outputs: no copy of h_{t-1} unmasked
                out, h0 = cast(Tensor, self._out), cast(Tensor, self._h0)
                earlier, later, first = _shift(self._reverse)
                self._h_rec = huge_pages.empty_like(out)
                torch.mul(out[earlier], self._mask, out=self._h_rec[later])
                torch.mul(h0, self._mask, out=self._h_rec[first])
        return self._h_rec

    def weight_grad(self, d_a_all: Tensor) -> Tensor:
        """``dW_hh = sum_t dA_t^T h_rec_{t-1}``: one ``(N, T*B) @ (T*B, K)`` multiply, or
        two (the shifted outputs, then ``h0``) where nothing needs copying."""
        if self._h_rec is not None or self._prevs is not None or self._mask is not None:
            return weight_grad(d_a_all, self.inputs())
        out, h0 = cast(Tensor, self._out), cast(Tensor, self._h0)
        earlier, later, first = _shift(self._reverse)
        grad = d_a_all[first].t().mm(h0)
        return grad.addmm_(_flat(d_a_all[later]).t(), _flat(out[earlier]))


def norm_inputs(a_all: Tensor | None, previous: PreviousStates, w_hh: Tensor) -> Tensor:
    """The layer norm's inputs ``a_t = h_rec_t W_hh^T`` of all steps: kept, or recomputed."""
    return huge_pages.projection(previous.inputs(), w_hh) if a_all is None else a_all


def dense(tensor: Tensor | None) -> Tensor | None:
    """Contiguous copy (or view) for the native loops; ``None`` stays ``None``."""
    return None if tensor is None else tensor.contiguous()


def output_grad(d_out: Tensor) -> Tensor:
    """The outputs' gradient as the loops read it: in place where its last stride is 1 or 0.

    A loss over the outputs themselves (``out.sum()``, ``out.mean()``) hands over a gradient
    broadcast from one value (every stride 0): read where it lies instead of being copied
    into a ``(T, B, H)`` plane (26 MB at T=100, B=128, H=512), on CPU. Other layouts, and
    CUDA (whose graphed loops copy it into their own buffer), get a contiguous copy.
    """
    if d_out.device.type == "cpu" and d_out.dim() == 3 and d_out.stride(-1) in (0, 1):
        return d_out
    return huge_pages.contiguous(d_out)


def flat_valid(valid: Tensor | None) -> Tensor | None:
    """``(T, B, 1)`` bool as the ``(T, B)`` contiguous bool the native loops read."""
    return None if valid is None else valid.reshape(valid.shape[0], valid.shape[1]).contiguous()


def dropped(w_hh: Tensor, keep: Tensor | SeededMask | None, scale: float) -> Tensor:
    """DropConnect applied inside the fused function: ``W_hh`` where ``keep``, scaled."""
    return w_hh if keep is None else apply_drop_connect(w_hh, keep, scale)


def undropped_grad(
    grad: Tensor | None, keep: Tensor | SeededMask | None, scale: float
) -> Tensor | None:
    """The gradient of the raw ``W_hh`` from that of the masked one (the same map)."""
    return grad if grad is None or keep is None else apply_drop_connect(grad, keep, scale)


def norm_buffers(
    gx: Tensor, layer_norm: bool, keep_inputs: bool
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(a_all, mean_all, rstd_all)`` of the recurrent layer norm, or ``None`` each.

    With ``keep_inputs=False`` the layer norm's inputs ``a_t = h_rec W_hh^T`` are not kept:
    backward recomputes all of them in one matrix multiply (:func:`norm_inputs`), which
    saves a ``(T, B, G*H)`` buffer for a few percent more time.
    """
    if not layer_norm:
        return None, None, None
    steps, batch, _ = gx.shape
    a_all = huge_pages.empty_like(gx) if keep_inputs else None
    return a_all, gx.new_empty(steps, batch, 1), gx.new_empty(steps, batch, 1)
