"""A gated-feedback LSTM stack over a whole chunk, as one autograd node with a hand-derived backward pass.

Run as PyTorch operations inside the step loop (`GatedFeedbackLSTMCell.recurrent_step`), each layer
and step costs five small multiplies and some thirty element-wise operations, each with its graph
node; those, not the arithmetic, set the speed (0.24-0.29 of nn.LSTM's GFLOP/s). Here every
multiply that reads a layer's new state h^i_t is one multiply by that layer's stacked weight,

    rec^i_t = h^i_t W_rec^i^T   (B, R), R = 4H + (L-1)H + L·L, W_rec^i stacking for source layer i
        [U^i (its own four gate blocks) | U_c^{i->k} for each other layer k | u^{.->k}'s columns of h^i for each k]

so per step there is one multiply per layer for the recurrence (read at t+1 by every layer), one
per layer above the first for its input (the layer below's output after dropout), the same counts
backwards, and the weights' gradients as one multiply per weight over all T steps. The
element-wise work of a layer's step, forwards and backwards, is one C call (`rnnkit/native/gfrnn.c`,
whose header has the equations; their derivation is in `feedback.py`). It runs where the kernels
are built (`native.calls.usable`); elsewhere, and for padded batches, the step path runs. Checked
against the step path and by finite differences in tests/test_feedback_sequence.py.
"""

from __future__ import annotations

import ctypes

import torch

from ..native.calls import kernel, step_multiplier
from .feedback import GatedFeedbackLSTMCell


def stacked_weights(cells: list[GatedFeedbackLSTMCell]) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                                                 list[torch.Tensor]]:
    """The stack's parameters in the layout above, still attached to autograd: W_rec^i per layer,
    then per layer above the first its input weights [W | w] (4H + L, H) and biases [b_ih | b]."""
    L, H = len(cells), cells[0].hidden_size
    recurrent = []
    for i in range(L):
        blocks = [cells[i].weight_hh]
        blocks += [cells[k].weight_feedback[cells[k].others.index(i)] for k in range(L) if k != i]
        blocks += [cells[k].reset_weight_hh[:, i * H:(i + 1) * H] for k in range(L)]
        recurrent.append(torch.cat(blocks))
    inputs = [torch.cat([c.weight_ih, c.reset_weight_ih]) for c in cells[1:]]
    input_biases = [torch.cat([c.bias_ih, c.reset_bias]) for c in cells[1:]]
    return recurrent, inputs, input_biases


MAX_LAYERS = 64  # the backward kernel keeps one reset gate's gradient per layer on its stack


class GatedFeedbackSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, masks: torch.Tensor | None,
                recurrent_biases: torch.Tensor, *weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """xp (T, B, 4H + L): the first layer's input projections; h0, c0 (L, B, H); masks (L-1, T, B, H):
        dropout's scaled masks on each upper layer's input, or None; recurrent_biases (L, 4H): b_hh;
        weights: the L recurrent, L-1 input weights and L-1 input biases of `stacked_weights`.
        -> the top layer's outputs (T, B, H), final h and c (L, B, H)."""
        T, B, A = xp.shape
        L, H = h0.shape[0], h0.shape[2]
        w_rec, w_in, b_in = weights[:L], weights[L:2 * L - 1], [b.detach() for b in weights[2 * L - 1:]]
        forward_kernel = kernel("gfrnn_forward", xp.dtype)
        times_rec = [step_multiplier(w, B) for w in w_rec]  # h^i -> h^i W_rec^i^T
        times_in = [step_multiplier(w, B) for w in w_in]
        hs = xp.new_empty(L, T + 1, B, H)  # h_{-1} .. h_{T-1} per layer
        cells = xp.new_empty(L, T + 1, B, H)
        hs[:, 0], cells[:, 0] = h0, c0
        # rec[t][i] (B, R): what h^i_{t-1} contributes at step t, R = 4H + (L-1)H + L·L; the kernel reads
        # the L arrays of a step through their addresses (addresses[t])
        rec, addresses = [[times_rec[i](h0[i]) for i in range(L)]], []
        # each upper layer's input after dropout; without dropout, the outputs of the layer below
        inputs = xp.new_empty(L - 1, T, B, H) if masks is not None else hs[:L - 1, 1:]
        act = xp.new_empty(L, T, B, 4 * H)  # σ(i), σ(f), tanh(content), σ(o)
        resets = xp.new_empty(L, T, B, L)  # resets[j, t, :, s]: g^{s->j}
        tanh_c = xp.new_empty(L, T, B, H)
        biases = recurrent_biases.detach().contiguous()
        for t in range(T):
            addresses.append((ctypes.c_void_p * L)(*(r.data_ptr() for r in rec[t])))
            for j in range(L):
                if j == 0:
                    a = xp[t]
                else:
                    below = hs[j - 1, t + 1] if masks is None else torch.mul(hs[j - 1, t + 1], masks[j - 1, t],
                                                                             out=inputs[j - 1, t])
                    a = times_in[j - 1](below).add_(b_in[j - 1])
                forward_kernel(B, H, L, j, a.data_ptr(), addresses[t], biases[j].data_ptr(),
                               cells[j, t].data_ptr(), act[j, t].data_ptr(), resets[j, t].data_ptr(),
                               cells[j, t + 1].data_ptr(), tanh_c[j, t].data_ptr(), hs[j, t + 1].data_ptr())
            if t + 1 < T:
                rec.append([times_rec[i](hs[i, t + 1]) for i in range(L)])
        ctx.save_for_backward(*weights)
        ctx.buffers = (hs, cells, rec, addresses, inputs, act, resets, tanh_c, biases, masks)
        return hs[L - 1, 1:].clone(), hs[:, T].clone(), cells[:, T].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor | None, grad_h: torch.Tensor | None,
                 grad_c: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        weights = ctx.saved_tensors
        hs, cells, rec, addresses, inputs, act, resets, tanh_c, biases, masks = ctx.buffers
        L, T, B, H = tanh_c.shape
        R = rec[0][0].shape[-1]
        w_rec, w_in = weights[:L], weights[L:2 * L - 1]
        backward_kernel = kernel("gfrnn_backward", hs.dtype)
        times_rec = [step_multiplier(w.t(), B) for w in w_rec]  # d rec^i -> d h^i
        times_in = [step_multiplier(w.t(), B) for w in w_in]  # an upper layer's d a -> d its input
        grad_out = grad_out.contiguous() if grad_out is not None else None
        dh = list(grad_h.contiguous().unbind(0)) if grad_h is not None else [hs.new_zeros(B, H)] * L
        dc = grad_c.clone(memory_format=torch.contiguous_format) if grad_c is not None else hs.new_zeros(L, B, H)
        d_rec = hs.new_empty(L, T, B, R)  # d loss / d rec[t][i] at [i, t]: every column is written by the kernel
        d_a = hs.new_empty(L, T, B, 4 * H + L)  # d loss / d each layer's input projection
        for t in reversed(range(T)):
            for j in reversed(range(L)):
                out = grad_out[t].data_ptr() if j == L - 1 and grad_out is not None else None
                above = times_in[j](d_a[j + 1, t]) if j < L - 1 else None
                mask = masks[j, t].data_ptr() if above is not None and masks is not None else None
                backward_kernel(B, H, L, j, T * B * R, dh[j].data_ptr(), out,
                                above.data_ptr() if above is not None else None, mask, dc[j].data_ptr(),
                                act[j, t].data_ptr(), resets[j, t].data_ptr(), cells[j, t].data_ptr(),
                                tanh_c[j, t].data_ptr(), addresses[t], biases[j].data_ptr(),
                                d_a[j, t].data_ptr(), d_rec[0, t].data_ptr())
            dh = [times_rec[i](d_rec[i, t]) for i in range(L)]  # to h^i_{t-1}, through rec[t][i]
        # the weights' gradients, one multiply each over all steps
        flat = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731
        grad_rec = [flat(d_rec[i]).t() @ flat(hs[i, :T]) for i in range(L)]
        grad_in = [flat(d_a[j]).t() @ flat(inputs[j - 1]) for j in range(1, L)]
        grad_in_bias = [flat(d_a[j]).sum(0) for j in range(1, L)]
        # b_hh enters beside U^j h^j_{t-1}, gated alike: its gradient is that block's, summed
        grad_biases = torch.stack([flat(d_rec[j, :, :, :4 * H]).sum(0) for j in range(L)])
        return (d_a[0], torch.stack(dh), dc, None, grad_biases, *grad_rec, *grad_in, *grad_in_bias)
