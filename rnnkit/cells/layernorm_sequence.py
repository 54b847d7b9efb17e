"""The layer-normalised LSTM over a whole chunk, as one autograd node with a hand-derived backward pass.

Run step by step as PyTorch operations, each time step of `LayerNormLSTMCell` is about fifteen
passes over (B, 4H) tensors forward and as many backward, each with its own allocation and graph
node; at batch 64 and H = 256 those passes, not the matrix multiplies, set the speed.
`LayerNormLSTMSequence` runs the multiplies in PyTorch and all the element-wise work of a step in
one C call per row pass (`rnnkit/native/lnlstm.c`, whose header has the equations):

- forward, per step: z = h_{t-1} W_hh^T (one multiply, on W_hh packed once per chunk for oneDNN
  where PyTorch has it: `native.calls.step_multiplier`), then the kernel: normalisations, gates,
  c_t, h_t, writing what the backward pass needs into (T, ...) buffers;
- backward, per step: the kernel (the gradients of the gates, of z and of c_{t-1}), then
  dh_{t-1} = dz_t W_hh + the output's gradient (one multiply, packed the same way); after the
  loop dW_hh = sum_t dz_t^T h_{t-1} is one (4H x T·B) x (T·B x H) multiply instead of T small
  ones. The kernel splits a step's rows among PyTorch's threads, then its columns for the
  normalisation parameters' gradients (each step's column sums, added while its slices are in cache).

It runs where the kernels are built (`rnnkit.native.library`) on CPU float32/float64 tensors;
elsewhere the cell's step path runs instead. Checked against the step path and by finite
differences in tests/test_native.py.
"""

from __future__ import annotations

import torch

from ..native.calls import (WORKSPACE, Slots, backward_start, column_sums, kernel, step_multiplier,
                            through_time)


class BlockLayerNorm(torch.autograd.Function):
    """z (..., G·H) -> each H-wide block normalised on its own, times gain (G·H) plus bias (G·H): the
    LN-LSTM's input projection for all steps at once. PyTorch's own layer_norm backward over
    (B, T, 4, H) took longer than the whole recurrence at H = 256, so the kernel does this too."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor, H: int) -> torch.Tensor:
        z = z.contiguous()
        gain, bias = gain.detach().contiguous(), bias.detach().contiguous()
        rows, blocks = z.numel() // H, gain.numel() // H
        token, (xhat, rstd) = WORKSPACE.take(("ln", z.shape, z.dtype), lambda: (torch.empty_like(z), z.new_empty(rows)))
        y = torch.empty_like(z)
        kernel("layer_norm_rows_forward", z.dtype)(rows, H, blocks, z.data_ptr(), gain.data_ptr(), bias.data_ptr(),
                                                   y.data_ptr(), xhat.data_ptr(), rstd.data_ptr())
        ctx.save_for_backward(gain)
        ctx.buffers = (token, xhat, rstd, H)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (gain,) = ctx.saved_tensors
        _, xhat, rstd, H = ctx.buffers
        grad_y = grad_y.contiguous()
        grad_x = torch.empty_like(grad_y)
        kernel("layer_norm_rows_backward", grad_y.dtype)(rstd.numel(), H, gain.numel() // H, grad_y.data_ptr(),
                                                         xhat.data_ptr(), rstd.data_ptr(), gain.data_ptr(),
                                                         grad_x.data_ptr())
        grad_gain, grad_bias = column_sums(grad_y.view(-1, gain.numel()), xhat.view(-1, gain.numel()))
        return grad_x, grad_gain, grad_bias, None


class LayerNormLSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weight_hh: torch.Tensor,
                gain_hh: torch.Tensor, bias_hh: torch.Tensor, gain_c: torch.Tensor,
                bias_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """xp (T, B, 4H) -> outputs (T, B, H), final h (B, H), final c (B, H)."""
        T, B, G = xp.shape
        H = G // 4
        forward_kernel = kernel("lnlstm_forward", xp.dtype)
        gain_hh, gain_c, bias_c = (p.detach().contiguous() for p in (gain_hh, gain_c, bias_c))
        times_weight = step_multiplier(weight_hh, B)  # h_{t-1} -> h_{t-1} W_hh^T
        # (T, B, 4H): b_hh added once for all steps; read by this call only
        shifted_token, (shifted,) = WORKSPACE.take(("lnlstm_shifted", xp.shape, xp.dtype),
                                                   lambda: (torch.empty_like(xp),))
        torch.add(xp, bias_hh.detach(), out=shifted)
        hs = xp.new_empty(T + 1, B, H)  # h_{-1} .. h_{T-1}; its slots 1.. are the outputs

        def make() -> tuple[torch.Tensor, ...]:  # what the backward pass reads, one slot per step
            return (xp.new_empty(T, B, G),  # n: z normalised per gate block, before its gain
                    xp.new_empty(T, B, 4),  # 1 / deviation of each block
                    xp.new_empty(T, B, G),  # act: σ(i), σ(f), tanh(g), σ(o)
                    xp.new_empty(T + 1, B, H),  # cells: c_{-1} .. c_{T-1}
                    xp.new_empty(T, B, H),  # LN(c) before its gain
                    xp.new_empty(T, B, 1),  # its 1 / deviation
                    xp.new_empty(T, B, H))  # squashed: tanh(LN(c) γ_c + β_c)

        token, saved = WORKSPACE.take(("lnlstm", xp.shape, xp.dtype), make)
        n, n_rstd, act, cells, c_hat, c_rstd, squashed = saved
        hs[0], cells[0] = h0, c0
        slots = [Slots(b) for b in (shifted, n, n_rstd, act, cells, c_hat, c_rstd, squashed, hs)]
        s_shifted, s_n, s_rstd, s_act, s_cells, s_chat, s_crstd, s_sq, s_hs = slots
        for t in range(T):
            z = times_weight(hs[t])
            forward_kernel(B, H, z.data_ptr(), s_shifted[t], gain_hh.data_ptr(), s_cells[t], gain_c.data_ptr(),
                           bias_c.data_ptr(), s_n[t], s_rstd[t], s_act[t], s_cells[t + 1], s_chat[t],
                           s_crstd[t], s_sq[t], s_hs[t + 1])
        del shifted_token  # free for the next chunk
        ctx.save_for_backward(weight_hh, gain_hh, gain_c)
        ctx.buffers = (token, n, n_rstd, act, cells, c_hat, c_rstd, squashed, hs)
        return hs[1:], hs[T].clone(), cells[T].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor | None, grad_h: torch.Tensor | None,
                 grad_c: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        weight_hh, gain_hh, gain_c = ctx.saved_tensors
        _, n, n_rstd, act, cells, c_hat, c_rstd, squashed, hs = ctx.buffers
        T, B, G = n.shape
        H = G // 4
        backward_kernel = kernel("lnlstm_backward", n.dtype)
        # grad_gates: d loss / d a_t, which is also d loss / d xp_t
        grad_out, dh, dc, grad_gates, token, grad_z = backward_start("lnlstm", n, grad_out, grad_h, grad_c)
        # scratch: d_hat (the gradient reaching LN(c) gain_c + bias_c) and from_norm (B, H), the column sums
        d_hat, from_norm, sums = n.new_empty(B, H), n.new_empty(B, H), n.new_empty(2 * G + 2 * H, dtype=torch.float64)
        # the normalisation parameters' gradients, each step's share added by the kernel
        grads = [n.new_zeros(G), n.new_zeros(G), n.new_zeros(H), n.new_zeros(H)]
        slots = [Slots(b) for b in (n, n_rstd, act, cells, c_hat, c_rstd, squashed, grad_gates, grad_z)]
        s_n, s_rstd, s_act, s_cells, s_chat, s_crstd, s_sq, s_gates, s_z = slots
        scratch = [p.data_ptr() for p in (d_hat, from_norm, sums, *grads)]

        def step(t: int, dh_address: int) -> None:
            backward_kernel(B, H, dh_address, dc.data_ptr(), s_n[t], s_rstd[t], gain_hh.data_ptr(), s_act[t],
                            s_cells[t], s_chat[t], s_crstd[t], gain_c.data_ptr(), s_sq[t], s_gates[t], s_z[t],
                            *scratch)

        dh, grad_weight = through_time(step, grad_out, dh, grad_z, weight_hh, hs)
        del token
        return (grad_gates, dh, dc, grad_weight, *grads)
