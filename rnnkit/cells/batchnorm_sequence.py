"""The batch-normalised LSTM over a whole training chunk, as one autograd node with a hand-derived
backward pass: the recurrent multiplies in PyTorch, each step's element-wise work (three batch
normalisations, the input projection's included, gates, cell) in one C call per direction
(`rnnkit/native/bnlstm.c`, whose header has the equations). The same design as `layernorm_sequence`,
where the reasons are measured.

It covers the training case the step path spends its time on: every row real (no padding) and at
the same step, so each time step has one set of batch statistics. `BatchNormLSTMCell` updates the
running averages afterwards from the statistics it returns.
"""

from __future__ import annotations

import torch

from ..native.calls import WORKSPACE, Slots, backward_start, kernel, step_multiplier, through_time


class BatchNormLSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, projections: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weight_hh: torch.Tensor,
                gain_ih: torch.Tensor, bias: torch.Tensor, gain_hh: torch.Tensor, gain_c: torch.Tensor,
                bias_c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """projections (T, B, 4H): x W_ih^T; bias (4H): b_ih + b_hh. Returns outputs (T, B, H), final h and
        c (B, H), and each step's batch means and biased variances of the projections (T, 4H), of
        W_hh h (T, 4H) and of c (T, H)."""
        T, B, G = projections.shape
        H = G // 4
        forward_kernel = kernel("bnlstm_forward", projections.dtype)
        x = projections.contiguous()
        params = [p.detach().contiguous() for p in (gain_ih, gain_hh, bias, gain_c, bias_c)]
        times_weight = step_multiplier(weight_hh, B)  # h_{t-1} -> h_{t-1} W_hh^T
        sums = x.new_empty(4 * G, dtype=torch.float64)  # the kernel's column sums
        hs = x.new_empty(T + 1, B, H)  # h_{-1} .. h_{T-1}; its slots 1.. are the outputs
        stats = [x.new_empty(T, G), x.new_empty(T, G), x.new_empty(T, G), x.new_empty(T, G), x.new_empty(T, H),
                 x.new_empty(T, H)]
        x_mean, x_var, z_mean, z_var, c_mean, c_var = stats  # they leave the function: never from the workspace

        def make() -> tuple[torch.Tensor, ...]:  # what the backward pass reads, one slot per step
            return (x.new_empty(T, B, G),  # x_hat: BN(projections) before its gain
                    x.new_empty(T, G),  # 1 / deviation of each column of the projections
                    x.new_empty(T, B, G),  # n: BN(z) before its gain
                    x.new_empty(T, G),  # 1 / deviation of each column of z
                    x.new_empty(T, B, G),  # act: σ(i), σ(f), tanh(g), σ(o)
                    x.new_empty(T + 1, B, H),  # cells: c_{-1} .. c_{T-1}
                    x.new_empty(T, B, H),  # BN(c) before its gain
                    x.new_empty(T, H),  # 1 / deviation of each column of c
                    x.new_empty(T, B, H))  # squashed: tanh(BN(c) γ_c + β_c)

        token, saved = WORKSPACE.take(("bnlstm", x.shape, x.dtype), make)
        x_hat, x_rstd, n, z_rstd, act, cells, c_hat, c_rstd, squashed = saved
        hs[0], cells[0] = h0, c0
        buffers = (x, x_hat, x_mean, x_var, x_rstd, n, z_mean, z_var, z_rstd, act, cells, c_hat, c_mean, c_var,
                   c_rstd, squashed, hs)
        (s_x, s_xhat, s_xm, s_xv, s_xr, s_n, s_zm, s_zv, s_zr, s_act, s_c, s_chat, s_cm, s_cv, s_cr, s_sq,
         s_hs) = [Slots(b) for b in buffers]
        g_ih, g_hh, b_gates, g_c, b_c = (p.data_ptr() for p in params)
        for t in range(T):
            z = times_weight(hs[t])
            forward_kernel(B, H, s_x[t], z.data_ptr(), g_ih, g_hh, b_gates, s_c[t], g_c, b_c, sums.data_ptr(),
                           s_xhat[t], s_xm[t], s_xv[t], s_xr[t], s_n[t], s_zm[t], s_zv[t], s_zr[t], s_act[t],
                           s_c[t + 1], s_chat[t], s_cm[t], s_cv[t], s_cr[t], s_sq[t], s_hs[t + 1])
        ctx.save_for_backward(weight_hh, *params[:2], params[3])
        ctx.buffers = (token, *saved, hs)
        ctx.mark_non_differentiable(*stats)
        return (hs[1:], hs[T].clone(), cells[T].clone(), *stats)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, grad_h, grad_c, *unused) -> tuple[torch.Tensor | None, ...]:
        weight_hh, gain_ih, gain_hh, gain_c = ctx.saved_tensors
        _, x_hat, x_rstd, n, z_rstd, act, cells, c_hat, c_rstd, squashed, hs = ctx.buffers
        T, B, G = n.shape
        H = G // 4
        backward_kernel = kernel("bnlstm_backward", n.dtype)
        # grad_x: d loss / d projections (it leaves the function)
        grad_out, dh, dc, grad_x, token, grad_z = backward_start("bnlstm", n, grad_out, grad_h, grad_c)
        gates, d_hat, sums = n.new_empty(B, G), n.new_empty(B, H), n.new_empty(2 * H + 3 * G, dtype=torch.float64)
        grads = [n.new_zeros(G), n.new_zeros(G), n.new_zeros(G), n.new_zeros(H), n.new_zeros(H)]
        grad_gain_ih, grad_bias, grad_gain_hh, grad_gain_c, grad_bias_c = grads
        buffers = (x_hat, x_rstd, n, z_rstd, act, cells, c_hat, c_rstd, squashed, grad_x, grad_z)
        s_xhat, s_xr, s_n, s_zr, s_act, s_c, s_chat, s_cr, s_sq, s_gx, s_z = [Slots(b) for b in buffers]
        g_ih, g_hh, g_c = gain_ih.data_ptr(), gain_hh.data_ptr(), gain_c.data_ptr()
        scratch = [p.data_ptr() for p in (gates, d_hat, sums, *grads)]

        def step(t: int, dh_address: int) -> None:
            backward_kernel(B, H, dh_address, dc.data_ptr(), s_xhat[t], s_xr[t], g_ih, s_n[t], s_zr[t], g_hh,
                            s_act[t], s_c[t], s_chat[t], s_cr[t], g_c, s_sq[t], s_gx[t], s_z[t], *scratch)

        dh, grad_weight = through_time(step, grad_out, dh, grad_z, weight_hh, hs)
        del token
        return grad_x, dh, dc, grad_weight, grad_gain_ih, grad_bias, grad_gain_hh, grad_gain_c, grad_bias_c
