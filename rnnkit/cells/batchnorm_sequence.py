"""The batch-normalised LSTM over a whole training chunk, as one autograd node with a hand-derived
backward pass: the recurrent multiplies in PyTorch, each step's element-wise work (two batch
normalisations, gates, cell) in one C call per direction (`rnnkit/native/bnlstm.c`, whose header
has the equations). The same design as `layernorm_sequence`, where the reasons are measured.

It covers the training case the step path spends its time on: every row real (no padding) and at
the same step, so each time step has one set of batch statistics. `BatchNormLSTMCell` computes the
input projection's normalisation for all steps at once beforehand and updates the running
averages afterwards from the statistics this returns.
"""

from __future__ import annotations

import torch

from ..native.calls import WORKSPACE, Slots, kernel


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
        w_t = weight_hh.detach().t()
        z = shifted.new_empty(B, G)  # this step's h_{t-1} W_hh^T
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
        fixed = [p.data_ptr() for p in (gain_hh,)]
        for t in range(T):
            torch.mm(hs[t], w_t, out=z)
            forward_kernel(B, H, z.data_ptr(), s_sh[t], *fixed, s_c[t], gain_c.data_ptr(), bias_c.data_ptr(),
                           sums.data_ptr(), s_n[t], s_zm[t], s_zv[t], s_zr[t], s_act[t], s_c[t + 1], s_chat[t],
                           s_cm[t], s_cv[t], s_cr[t], s_sq[t], s_hs[t + 1])
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
        weight = weight_hh.detach()
        grad_out = n.new_zeros(T, B, H) if grad_out is None else grad_out.contiguous()
        dh = grad_out[T - 1] if grad_h is None else grad_out[T - 1] + grad_h
        dc = n.new_zeros(B, H) if grad_c is None else grad_c.clone(memory_format=torch.contiguous_format)
        grad_gates = n.new_empty(T, B, G)  # d loss / d a_t, which is also d loss / d shifted_t
        token, (grad_z,) = WORKSPACE.take(("bnlstm_grad_z", n.shape, n.dtype), lambda: (n.new_empty(T, B, G),))
        d_hat, sums = n.new_empty(B, H), n.new_empty(2 * H + 2 * G, dtype=torch.float64)
        grad_gain_hh, grad_gain_c, grad_bias_c = n.new_zeros(G), n.new_zeros(H), n.new_zeros(H)
        buffers = (n, z_rstd, act, cells, c_hat, c_rstd, squashed, grad_gates, grad_z)
        s_n, s_zr, s_act, s_c, s_chat, s_cr, s_sq, s_gates, s_z = [Slots(b) for b in buffers]
        scratch = [p.data_ptr() for p in (d_hat, sums, grad_gain_hh, grad_gain_c, grad_bias_c)]
        for t in range(T - 1, -1, -1):
            dh = dh.contiguous()
            backward_kernel(B, H, dh.data_ptr(), dc.data_ptr(), s_n[t], s_zr[t], gain_hh.data_ptr(), s_act[t],
                            s_c[t], s_chat[t], s_cr[t], gain_c.data_ptr(), s_sq[t], s_gates[t], s_z[t], *scratch)
            # dh_{t-1}: through the recurrent multiply, plus what the output at t-1 receives
            dh = torch.addmm(grad_out[t - 1], grad_z[t], weight) if t > 0 else grad_z[0] @ weight
        grad_weight = grad_z.view(T * B, G).t() @ hs[:-1].reshape(T * B, H)
        del token
        return grad_gates, dh, dc, grad_weight, grad_gain_hh, grad_gain_c, grad_bias_c
