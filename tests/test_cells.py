"""The cell contract, the fused fast path against the step-by-step path, and init schemes."""

import copy

import pytest
import torch

from rnnkit.cells import CELL_TYPES, LSTMCell
from rnnkit.recurrent import Recurrent


CELLS = sorted(CELL_TYPES)
FUSED_CELLS = sorted(name for name, cell in CELL_TYPES.items() if cell.fused_mode)


def _loop_copy(rec: Recurrent) -> Recurrent:
    """The same weights, forced onto the Python step-by-step path."""
    clone = copy.deepcopy(rec)
    clone._fused = []
    return clone


@pytest.mark.parametrize("cell", FUSED_CELLS)
def test_fused_kernel_matches_step_functions(cell):
    # distinct small sizes so a transposed weight or a swapped gate cannot go unnoticed
    torch.manual_seed(0)
    rec = Recurrent(cell, input_size=3, hidden_size=5, num_layers=2).double()
    for c in rec.cells:
        c.reset_parameters("pytorch")  # non-zero biases, no symmetry
    assert rec.is_fused
    loop = _loop_copy(rec)
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    state = tuple(torch.randn(2, 4, 5, dtype=torch.float64) for _ in rec.state_names)
    out_f, state_f = rec(x, state)
    out_l, state_l = loop(x, state)
    torch.testing.assert_close(out_f, out_l)
    for a, b in zip(state_f, state_l):
        torch.testing.assert_close(a, b)
    (out_f.sum() + sum(s.sum() for s in state_f)).backward()
    (out_l.sum() + sum(s.sum() for s in state_l)).backward()
    for (name, p), q in zip(rec.named_parameters(), loop.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("recorded", [False, True])
def test_step_matches_sequence(cell, recorded):
    # Recurrent.step is the one step path (sampling, capture, diagnostics): the fused one-step ops
    # without a record, the cells' own step functions with one; both must equal the sequence path.
    torch.manual_seed(1)
    rec = Recurrent(cell, 3, 4, num_layers=2)
    x = torch.randn(2, 5, 3)
    out, final = rec(x)
    states = rec.layer_states(rec.init_state(2))
    for t in range(5):
        records = [] if recorded else None
        y, states = rec.step(x[:, t], states, records)
        torch.testing.assert_close(y, out[:, t])
        if recorded:
            assert len(records) == 2 and all(set(r) >= set(rec.cells[0].gate_names) for r in records)
    for a, b in zip(rec.stack_states(states), final):
        torch.testing.assert_close(a, b)


def test_step_takes_a_precomputed_first_projection():
    torch.manual_seed(2)
    rec = Recurrent("lnlstm", 3, 4, num_layers=2)
    x = torch.randn(2, 3)
    states = rec.layer_states(rec.init_state(2))
    y, _ = rec.step(x, states)
    y_projected, _ = rec.step(rec.cells[0].input_projection(x), states, projected=True)
    torch.testing.assert_close(y_projected, y)


def test_parameters_have_one_owner():
    rec = Recurrent("lstm", 3, 4, num_layers=2)
    names = [n for n, _ in rec.named_parameters()]
    assert names == [f"cells.{k}.{w}" for k in range(2) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def test_irnn_starts_with_identity_recurrence_and_zero_bias():
    rec = Recurrent("irnn", 3, 6)
    cell = rec.cells[0]
    torch.testing.assert_close(cell.weight_hh.detach(), torch.eye(6))
    assert cell.bias_ih.abs().sum() == 0 and cell.bias_hh.abs().sum() == 0
    assert cell.weight_ih.std() < 0.01


def test_lstm_forget_bias():
    cell = LSTMCell(3, 4)
    cell.reset_parameters("orthogonal", forget_bias=2.5)
    total = (cell.bias_ih + cell.bias_hh).detach()
    assert torch.all(total[4:8] == 2.5)
    assert torch.all(total[:4] == 0) and torch.all(total[8:] == 0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_orthogonal_blocks(cell):
    rec = Recurrent(cell, 3, 8)
    w = rec.cells[0].weight_hh.detach()
    for block in w.split(8):
        torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)


def test_uniform_scheme_bounds():
    cell = LSTMCell(3, 4)
    cell.reset_parameters("uniform", forget_bias=1.0)
    for w in (cell.weight_ih, cell.weight_hh):
        assert 0.01 < w.abs().max() <= 0.08
    assert torch.all(cell.bias_ih[4:8] == 1.0)  # the forget-gate bias applies under every scheme
    assert cell.bias_ih[:4].abs().max() <= 0.08


def _layer_norm_lstm_by_hand(cell, x, h, c):
    """Ba et al. (2016) LN-LSTM written out from the equations, with per-gate-block normalisation."""
    H = cell.hidden_size

    def norm(z):  # z (B, H)
        return (z - z.mean(-1, keepdim=True)) / torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + 1e-5)

    def gates_ln(z, gain, bias):
        return torch.cat([norm(block) for block in z.split(H, dim=1)], dim=1) * gain + bias

    gates = gates_ln(x @ cell.weight_ih.T, cell.ln_ih_gain, cell.bias_ih) \
        + gates_ln(h @ cell.weight_hh.T, cell.ln_hh_gain, cell.bias_hh)
    i, f, g, o = gates.split(H, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(norm(c) * cell.ln_c_gain + cell.ln_c_bias)
    return h, c


def test_layer_norm_lstm_matches_its_equations_and_finite_differences():
    torch.manual_seed(3)
    rec = Recurrent("lnlstm", 3, 5, num_layers=2).double()
    assert not rec.is_fused
    with torch.no_grad():
        for p in rec.parameters():
            p.add_(0.1 * torch.randn_like(p))  # gains and biases away from 1 and 0
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    out, (h_n, c_n) = rec(x)
    # the sequence path (hoisted projection) against the equations, one step at a time, layer 1
    cell = rec.cells[0]
    h = c = torch.zeros(2, 5, dtype=torch.float64)
    for t in range(4):
        h, c = _layer_norm_lstm_by_hand(cell, x[:, t], h, c)
    torch.testing.assert_close(h, h_n[0])
    torch.testing.assert_close(c, c_n[0])
    # gradients of the whole stack against centred finite differences
    names = [name for name, _ in rec.named_parameters()]
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)

    def loss_of(*values):
        y, _ = torch.func.functional_call(rec, dict(zip(names, values)), (x,))
        return (y * weights).sum()

    assert torch.autograd.gradcheck(loss_of, tuple(p.detach().clone().requires_grad_() for p in rec.parameters()))


def test_layer_norm_lstm_keeps_forget_bias_and_unit_gains():
    cell = CELL_TYPES["lnlstm"](3, 4)
    cell.reset_parameters("orthogonal", forget_bias=2.0)
    assert torch.all(cell.bias_ih[4:8] == 2.0)
    assert torch.all(cell.ln_ih_gain == 1) and torch.all(cell.ln_c_bias == 0)


@pytest.mark.parametrize("cell", FUSED_CELLS)
def test_fused_kernel_runs_under_cpu_bf16_autocast_on_any_cpu(cell):
    # oneDNN has bf16 RNN kernels only on CPUs with bf16/AVX-512 instructions; elsewhere the
    # layer must fall back to a kernel that works rather than fail (precision.rnn_kernel_context).
    torch.manual_seed(4)
    rec = Recurrent(cell, 3, 8, num_layers=2)
    x = torch.randn(2, 7, 3)
    expected, _ = rec(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, state = rec(x)
        out.float().sum().backward()
    assert out.shape == expected.shape and all(p.grad is not None for p in rec.parameters())
    torch.testing.assert_close(out.float(), expected, atol=0.05, rtol=0.05)  # bf16 keeps ~3 digits


@pytest.mark.parametrize("cell", FUSED_CELLS)
@pytest.mark.parametrize("bidirectional, padded", [(False, False), (True, True)])
def test_layer_by_layer_fused_run_draws_the_same_dropout_as_the_fused_kernel(cell, bidirectional, padded):
    # On a GPU, training with dropout runs the stack one layer at a time (cuDNN's own masks cannot be
    # checkpointed); on CPU the fused kernel draws from PyTorch's generator, so both must agree exactly.
    from torch.func import functional_call
    from torch.nn.utils.rnn import pack_padded_sequence
    from rnnkit.fused_layers import run_by_layer
    torch.manual_seed(4)
    rec = Recurrent(cell, 3, 5, num_layers=3, dropout=0.4, bidirectional=bidirectional).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    state = tuple(torch.randn_like(part) for part in rec.init_state(4, dtype=torch.float64))
    if padded:
        x = pack_padded_sequence(x, torch.tensor([6, 2, 5, 3]), batch_first=True, enforce_sorted=False)
    kernel = rec._fused[0].train()
    weights = {f"{n}_l{k}{suffix}": getattr(cells[k], n) for cells, suffix in rec._directions()
               for k in range(3) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    layers = [[weights[f"{n}_l{k}{suffix}"] for _, suffix in rec._directions()
               for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")] for k in range(3)]
    torch.manual_seed(1)
    fused_out, fused_state = functional_call(kernel, weights, (x, state if len(state) > 1 else state[0]))
    torch.manual_seed(1)
    out, new = run_by_layer(kernel.mode, layers, x, state, 0.4, True, bidirectional)
    torch.testing.assert_close(out.data if padded else out, fused_out.data if padded else fused_out, rtol=0, atol=1e-12)
    fused_state = fused_state if isinstance(fused_state, tuple) else (fused_state,)
    torch.testing.assert_close(new, fused_state, rtol=0, atol=1e-12)
    torch.manual_seed(2)  # other masks: a different result, so the comparison above could fail
    assert not torch.allclose(run_by_layer(kernel.mode, layers, x, state, 0.4, True, bidirectional)[1][0], new[0])


def test_configs_know_every_cell_and_which_refuse_zoneout_or_weight_drop():
    from rnnkit.config import CELLS as CONFIG_CELLS
    from rnnkit.config import NO_WEIGHT_DROP, NO_ZONEOUT
    assert set(CONFIG_CELLS) == set(CELL_TYPES)
    assert set(NO_ZONEOUT) == {name for name, cell in CELL_TYPES.items() if not cell.zoneout_ready}
    assert set(NO_WEIGHT_DROP) == {name for name, cell in CELL_TYPES.items() if not cell.recurrent_matrix}


@pytest.mark.parametrize("cell", CELLS)
def test_config_counts_the_parameters_of_every_cell(cell):
    from rnnkit.config import ModelConfig
    from rnnkit.models.language_model import LanguageModel
    for layers, embedding, residual, feed_forward in ((1, 5, False, 0), (3, 0, False, 0), (3, 4, cell != "gfrnn", 0),
                                                      (2, 4, cell != "gfrnn", 3 if cell != "gfrnn" else 0)):
        config = ModelConfig(vocab_size=7, cell=cell, hidden_size=6, num_layers=layers, embedding_size=embedding,
                             residual=residual, feed_forward=feed_forward)
        assert config.num_parameters() == sum(p.numel() for p in LanguageModel(config).parameters())
