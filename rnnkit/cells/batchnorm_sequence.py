"""The batch-normalised LSTM over a whole training chunk, as one autograd node with a hand-derived
backward pass: the recurrent multiplies in PyTorch, each step's element-wise work (two batch
normalisations, gates, cell) in one C call per direction (`rnnkit/native/bnlstm.c`, whose header
has the equations). The same design as `layernorm_sequence`, where the reasons are measured.

It covers the training case the step path spends its time on: every row real (no padding) and at
the same step, so each time step has one set of batch statistics. `BatchNormLSTMCell` normalises
the input projection of all steps beforehand (`StepBatchNorm`, one C call each way) and updates
the running averages afterwards from the statistics both return.
"""

from __future__ import annotations

import torch

from ..native.calls import WORKSPACE, Slots, backward_start, kernel, step_multiplier, through_time


class StepBatchNorm(torch.autograd.Function):
    """x (T, B, W) -> BN(x) gain + bias with each step's own batch statistics, and those statistics
    (means, biased variances, (T, W) each) for the running averages. Written as PyTorch operations
    (a variance over the middle dimension and a dozen passes with autograd) it cost more than the
    recurrence at H = 256."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, ...]:
        T, B, W = x.shape
        x = x.contiguous()
        gain, bias = gain.detach().contiguous(), bias.detach().contiguous()
        y, mean, var, rstd = torch.empty_like(x), x.new_empty(T, W), x.new_empty(T, W), x.new_empty(T, W)
        token, (xhat,) = WORKSPACE.take(("bn_input", x.shape, x.dtype), lambda: (torch.empty_like(x),))
        sums = x.new_empty(2 * W, dtype=torch.float64)
        kernel("batch_norm_steps_forward", x.dtype)(T, B, W, x.data_ptr(), gain.data_ptr(), bias.data_ptr(),
                                                    sums.data_ptr(), y.data_ptr(), xhat.data_ptr(), mean.data_ptr(),
                                                    var.data_ptr(), rstd.data_ptr())
        ctx.save_for_backward(gain)
        ctx.buffers = (token, xhat, rstd)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y: torch.Tensor, *unused) -> tuple[torch.Tensor, ...]:
        (gain,) = ctx.saved_tensors
        _, xhat, rstd = ctx.buffers
        T, B, W = xhat.shape
        grad_y = grad_y.contiguous()
        grad_x, grad_gain, grad_bias = torch.empty_like(grad_y), gain.new_zeros(W), gain.new_zeros(W)
        sums = grad_y.new_empty(2 * W, dtype=torch.float64)
        kernel("batch_norm_steps_backward", grad_y.dtype)(T, B, W, grad_y.data_ptr(), xhat.data_ptr(), rstd.data_ptr(),
                                                          gain.data_ptr(), sums.data_ptr(), grad_x.data_ptr(),
                                                          grad_gain.data_ptr(), grad_bias.data_ptr())
        return grad_x, grad_gain, grad_bias


class BatchNormLSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, shifted: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weight_hh: torch.Tensor,
                gain_hh: torch.Tensor, gain_c: torch.Tensor, bias_c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """shifted (T, B, 4H): BN(x W_ih) γ_ih + b_ih + b_hh. Returns outputs (T, B, H), final h and c
        (B, H), and each step's batch means and biased variances of W_hh h (T, 4H) and of c (T, H)."""
        T, B, G = shifted.shape
        H = G // 4
        forward_kernel = kernel("bnlstm_forward", shifted.dtype)
        shifted = shifted.contiguous()
        gain_hh, gain_c, bias_c = (p.detach().contiguous() for p in (gain_hh, gain_c, bias_c))
        times_weight = step_multiplier(weight_hh, B)  # h_{t-1} -> h_{t-1} W_hh^T
        sums = shifted.new_empty(2 * G, dtype=torch.float64)  # the kernel's column sums
        hs = shifted.new_empty(T + 1, B, H)  # h_{-1} .. h_{T-1}; its slots 1.. are the outputs
        stats = [shifted.new_empty(T, G), shifted.new_empty(T, G), shifted.new_empty(T, H), shifted.new_empty(T, H)]
        z_mean, z_var, c_mean, c_var = stats  # they leave the function: never from the workspace

        def make() -> tuple[torch.Tensor, ...]:  # what the backward pass reads, one slot per step
            return (shifted.new_empty(T, B, G),  # n: BN(z) before its gain
                    shifted.new_empty(T, G),  # 1 / deviation of each column of z
                    shifted.new_empty(T, B, G),  # act: σ(i), σ(f), tanh(g), σ(o)
                    shifted.new_empty(T + 1, B, H),  # cells: c_{-1} .. c_{T-1}
                    shifted.new_empty(T, B, H),  # BN(c) before its gain
                    shifted.new_empty(T, H),  # 1 / deviation of each column of c
                    shifted.new_empty(T, B, H))  # squashed: tanh(BN(c) γ_c + β_c)

        token, (n, z_rstd, act, cells, c_hat, c_rstd, squashed) = WORKSPACE.take(("bnlstm", shifted.shape,
                                                                                  shifted.dtype), make)
        hs[0], cells[0] = h0, c0
        buffers = (shifted, n, z_mean, z_var, z_rstd, act, cells, c_hat, c_mean, c_var, c_rstd, squashed, hs)
        s_sh, s_n, s_zm, s_zv, s_zr, s_act, s_c, s_chat, s_cm, s_cv, s_cr, s_sq, s_hs = [Slots(b) for b in buffers]
        for t in range(T):
            z = times_weight(hs[t])
            forward_kernel(B, H, z.data_ptr(), s_sh[t], gain_hh.data_ptr(), s_c[t], gain_c.data_ptr(),
                           bias_c.data_ptr(), sums.data_ptr(), s_n[t], s_zm[t], s_zv[t], s_zr[t], s_act[t],
                           s_c[t + 1], s_chat[t], s_cm[t], s_cv[t], s_cr[t], s_sq[t], s_hs[t + 1])
        ctx.save_for_backward(weight_hh, gain_hh, gain_c)
        ctx.buffers = (token, n, z_rstd, act, cells, c_hat, c_rstd, squashed, hs)
        ctx.mark_non_differentiable(*stats)
        return hs[1:], hs[T].clone(), cells[T].clone(), z_mean, z_var, c_mean, c_var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, grad_h, grad_c, *unused) -> tuple[torch.Tensor | None, ...]:
        weight_hh, gain_hh, gain_c = ctx.saved_tensors
        _, n, z_rstd, act, cells, c_hat, c_rstd, squashed, hs = ctx.buffers
        T, B, G = n.shape
        H = G // 4
        backward_kernel = kernel("bnlstm_backward", n.dtype)
        # grad_gates: d loss / d a_t, which is also d loss / d shifted_t
        grad_out, dh, dc, grad_gates, token, grad_z = backward_start("bnlstm", n, grad_out, grad_h, grad_c)
        d_hat, sums = n.new_empty(B, H), n.new_empty(2 * H + 2 * G, dtype=torch.float64)
        grad_gain_hh, grad_gain_c, grad_bias_c = n.new_zeros(G), n.new_zeros(H), n.new_zeros(H)
        buffers = (n, z_rstd, act, cells, c_hat, c_rstd, squashed, grad_gates, grad_z)
        s_n, s_zr, s_act, s_c, s_chat, s_cr, s_sq, s_gates, s_z = [Slots(b) for b in buffers]
        scratch = [p.data_ptr() for p in (d_hat, sums, grad_gain_hh, grad_gain_c, grad_bias_c)]

        def step(t: int, dh_address: int) -> None:
            backward_kernel(B, H, dh_address, dc.data_ptr(), s_n[t], s_zr[t], gain_hh.data_ptr(), s_act[t], s_c[t],
                            s_chat[t], s_cr[t], gain_c.data_ptr(), s_sq[t], s_gates[t], s_z[t], *scratch)

        dh, grad_weight = through_time(step, grad_out, dh, grad_z, weight_hh, hs)
        del token
        return grad_gates, dh, dc, grad_weight, grad_gain_hh, grad_gain_c, grad_bias_c
