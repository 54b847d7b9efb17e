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


def _minimal_by_hand(cell, x, h):
    """minGRU / minLSTM one step from the equations of Feng et al. (2024), log-space variant (g)."""
    def g(v):
        return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))
    xp = x @ cell.weight_ih.T + cell.bias_ih
    if cell.num_gates == 2:
        k, v = xp.chunk(2, dim=1)
        z = torch.sigmoid(k)
        return (1 - z) * h + z * g(v)
    f, i, v = xp.chunk(3, dim=1)
    f, i = torch.sigmoid(f), torch.sigmoid(i)
    return f / (f + i) * h + i / (f + i) * g(v)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_minimal_cells_scan_matches_their_equations_and_finite_differences(cell, monkeypatch):
    torch.manual_seed(4)
    rec = Recurrent(cell, 3, 5, num_layers=2).double()
    for c in rec.cells:
        c.reset_parameters("pytorch")  # non-zero biases
    assert not hasattr(rec.cells[0], "weight_hh")  # no recurrent matrix: the gates read the input only
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    h0 = torch.rand(2, 2, 5, dtype=torch.float64) + 0.1  # a carried state (states stay positive)
    with monkeypatch.context() as patch:  # a sequence is one scan per layer, never a loop of steps
        for c in rec.cells:
            patch.setattr(c, "recurrent_step", lambda *a, **k: pytest.fail("stepped through a sequence"))
        out, (h_n,) = rec(x, (h0,))
    h = h0[0]
    for t in range(7):
        h = _minimal_by_hand(rec.cells[0], x[:, t], h)
    torch.testing.assert_close(h, h_n[0])
    names = [name for name, _ in rec.named_parameters()]
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)

    def loss_of(*values):
        y, (last,) = torch.func.functional_call(rec, dict(zip(names, values)), (x, (h0,)))
        return (y * weights).sum() + last.sum()

    assert torch.autograd.gradcheck(loss_of, tuple(p.detach().clone().requires_grad_() for p in rec.parameters()))


def _carries_state_and_ignores_padding(rec: Recurrent, x: torch.Tensor, split: int, lengths: torch.Tensor) -> None:
    """Two chunks with the state carried equal one sequence; a padded batch equals each sequence alone."""
    whole, whole_state = rec(x)
    first, state = rec(x[:, :split])
    second, second_state = rec(x[:, split:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    for a, b in zip(second_state, whole_state):
        torch.testing.assert_close(a, b)
    padded, padded_state = rec(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_state = rec(x[b:b + 1, :n])
        torch.testing.assert_close(padded[b, :n], alone[0])
        assert torch.all(padded[b, n:] == 0)
        for p, a in zip(padded_state, alone_state):
            torch.testing.assert_close(p[:, b], a[:, 0])


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_minimal_cells_carry_state_and_ignore_padding(cell):
    torch.manual_seed(5)
    rec = Recurrent(cell, 3, 4, num_layers=2).double()
    x = torch.randn(3, 10, 3, dtype=torch.float64)
    _carries_state_and_ignores_padding(rec, x, 6, torch.tensor([10, 4, 7]))  # the scan continues from a carried state
    # a long sequence stays finite: the scan only multiplies and adds, nothing overflows
    long, _ = rec(torch.randn(1, 5000, 3, dtype=torch.float64) * 5)
    assert torch.isfinite(long).all()


def test_indrnn_matches_its_equations_and_finite_differences():
    torch.manual_seed(6)
    rec = Recurrent("indrnn", 3, 5, num_layers=2).double()
    for c in rec.cells:
        c.reset_parameters("pytorch")
    assert rec.cells[0].weight_hh.shape == (5,)  # one recurrent weight per unit
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    out, (h_n,) = rec(x)
    cell, h = rec.cells[0], torch.zeros(2, 5, dtype=torch.float64)
    for t in range(6):
        h = torch.relu(x[:, t] @ cell.weight_ih.T + cell.bias_ih + cell.weight_hh * h + cell.bias_hh)
    torch.testing.assert_close(h, h_n[0])
    names = [name for name, _ in rec.named_parameters()]
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)

    def loss_of(*values):
        return (torch.func.functional_call(rec, dict(zip(names, values)), (x,))[0] * weights).sum()

    assert torch.autograd.gradcheck(loss_of, tuple(p.detach().clone().requires_grad_() for p in rec.parameters()))


def test_indrnn_bound_keeps_a_long_gradient_from_exploding_or_vanishing():
    from rnnkit.cells.indrnn import GAMMA, MAX_STEPS
    cell = CELL_TYPES["indrnn"](1, 3).double()
    with torch.no_grad():
        cell.weight_hh.copy_(torch.tensor([10.0, 1.0, -10.0]))  # far outside the bound, as an optimizer might push it
        cell.weight_ih.fill_(0.0)
        cell.bias_ih.fill_(0.01)  # keeps every unit active so the ReLU passes gradients
    h0 = torch.ones(1, 3, dtype=torch.float64, requires_grad=True)
    state = (h0,)
    xp = cell.input_projection(torch.zeros(1, 1, dtype=torch.float64))
    for _ in range(MAX_STEPS):
        _, state = cell.recurrent_step(xp, state)
    (grad,) = torch.autograd.grad(state[0][0, :2].sum(), h0)
    # d h_T / d h_0 of a unit is u^T: at the bound exactly GAMMA, at 1 exactly 1; never 10^1000
    torch.testing.assert_close(grad[0, :2], torch.tensor([GAMMA, 1.0], dtype=torch.float64))


def test_zoneout_keeps_units_at_random_in_training_and_its_expectation_in_evaluation():
    torch.manual_seed(7)
    rec = Recurrent("lstm", 3, 200, zoneout=0.3)
    assert not rec.is_fused  # the fused kernels cannot zone out: the step path runs it
    x = torch.randn(64, 2, 3)
    state = tuple(torch.randn(1, 64, 200) for _ in rec.state_names)
    plain = Recurrent("lstm", 3, 200)
    plain.load_state_dict(rec.state_dict())
    _, (h_new, c_new) = plain(x[:, :1], state)  # the update without zoneout
    rec.train()
    _, (h, c) = rec(x[:, :1], state)
    kept = (h == state[0]) & (c == state[1])
    updated = torch.isclose(h, h_new, atol=1e-6)  # (the plain layer runs the fused kernel: rounding differs)
    assert torch.all((h == state[0]) | updated)  # every unit either kept or updated
    assert torch.all((c == state[1]) | torch.isclose(c, c_new, atol=1e-6))
    assert abs((h == state[0]).float().mean().item() - 0.3) < 0.02 and kept.float().mean() < 0.2  # separate masks
    rec.eval()
    out, (h, c) = rec(x[:, :1], state)
    torch.testing.assert_close(h, 0.3 * state[0] + 0.7 * h_new)
    torch.testing.assert_close(c, 0.3 * state[1] + 0.7 * c_new)
    # sampling's step path gives the same expectation
    y, _ = rec.step(x[:, 0], rec.layer_states(state))
    torch.testing.assert_close(y, out[:, 0])


@pytest.mark.parametrize("cell", ["lstm", "irnn", "lnlstm", "gfrnn"])  # fused, C kernels, whole-stack node
def test_weight_drop_drops_recurrent_weights_once_per_call_and_never_in_evaluation(cell):
    from rnnkit.weight_drop import dropped_recurrent_weights
    torch.manual_seed(3)
    rec = Recurrent(cell, 3, 16, num_layers=2, weight_drop=0.4)
    plain = Recurrent(cell, 3, 16, num_layers=2)
    plain.load_state_dict(rec.state_dict())
    x = torch.randn(4, 9, 3)
    rec.eval()
    torch.testing.assert_close(rec(x)[0], plain(x)[0])  # evaluation: W_hh whole
    rec.train()
    torch.manual_seed(5)
    out, _ = rec(x)
    torch.manual_seed(5)  # the same masks, applied by hand: one matrix per layer for every step and row
    dropped = dropped_recurrent_weights(plain, 0.4)
    assert sorted(dropped) == ["cells.0.weight_hh", "cells.1.weight_hh"]  # a gfrnn's reset_weight_hh stays whole
    for name, weight in dropped.items():
        whole = plain.get_parameter(name)
        kept = weight != 0
        assert 0.45 < kept[whole != 0].float().mean() < 0.75, name  # (the IRNN's identity is mostly zeros)
        torch.testing.assert_close(weight[kept], whole[kept] / 0.6)
    hand = torch.func.functional_call(plain.train(), dropped, (x,))[0]
    torch.testing.assert_close(out, hand)
    assert not torch.allclose(out, plain(x)[0], atol=1e-3)
    out.pow(2).sum().backward()  # the gradient reaches W_hh through the mask only
    for name, weight in dropped.items():
        grad, dropped_out = rec.get_parameter(name).grad, (weight == 0) & (plain.get_parameter(name) != 0)
        assert torch.all(grad[dropped_out] == 0) and grad.abs().sum() > 0, name


@pytest.mark.parametrize("options, message", [
    (dict(weight_drop=1.0), "--weight-drop must be in"), (dict(weight_drop=-0.2), "--weight-drop must be in"),
    (dict(weight_drop=0.2, cell="mingru"), "which the mingru cell does not learn"),
    (dict(weight_drop=0.2, cell="indrnn"), "which the indrnn cell does not learn"),
    (dict(weight_drop=0.2, cell="esn"), "which the esn cell does not learn"),
])
def test_weight_drop_bad_values(options, message):
    from rnnkit.config import ModelConfig
    from rnnkit.errors import UsageError
    from rnnkit.estimators.configs import ClassifierConfig, RegressorConfig, TaggerConfig
    with pytest.raises(UsageError, match=message):
        ModelConfig(vocab_size=5, **options)
    for config in (ClassifierConfig, RegressorConfig, TaggerConfig):  # the estimators' configs, and flags
        with pytest.raises(UsageError, match=message):
            config(**options)
    if "cell" in options:  # the layer refuses it too, whoever builds one
        with pytest.raises(UsageError, match=message):
            Recurrent(options["cell"], 3, 4, weight_drop=0.2)


@pytest.mark.parametrize("options, message", [
    (dict(zoneout=1.0), "--zoneout must be in"), (dict(zoneout=-0.1), "--zoneout must be in"),
    (dict(zoneout=0.1, cell="mingru"), "does not apply to the mingru cell"),
    (dict(zoneout=0.1, cell="bnlstm"), "does not apply to the bnlstm cell"),
    (dict(cell="esn", spectral_radius=0.0), "--spectral-radius must be in"),
    (dict(cell="esn", spectral_radius=-1.0), "--spectral-radius must be in"),
    (dict(cell="gfrnn", residual=True), "leave out --residual"),
    (dict(cell="mingru", feed_forward=2), "add --residual"),
    (dict(cell="mingru", residual=True, num_layers=1, feed_forward=2), "--num-layers 2 or more"),
    (dict(cell="mingru", residual=True, feed_forward=-1), "--feed-forward must be >= 0"),
])
def test_zoneout_bad_values(options, message):
    from rnnkit.config import ModelConfig
    from rnnkit.errors import UsageError
    with pytest.raises(UsageError, match=message):
        ModelConfig(vocab_size=5, **options)
    if "zoneout" in options and "cell" in options:  # the layer refuses it too, whoever builds one
        with pytest.raises(UsageError, match=message):
            Recurrent(options["cell"], 3, 4, zoneout=0.1)


def test_configs_know_every_cell_and_which_refuse_zoneout_or_weight_drop():
    from rnnkit.config import CELLS as CONFIG_CELLS
    from rnnkit.config import NO_WEIGHT_DROP, NO_ZONEOUT
    assert set(CONFIG_CELLS) == set(CELL_TYPES)
    assert set(NO_ZONEOUT) == {name for name, cell in CELL_TYPES.items() if not cell.zoneout_ready}
    assert set(NO_WEIGHT_DROP) == {name for name, cell in CELL_TYPES.items() if not cell.recurrent_matrix}


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("T", [1, 2, 7, 50])
def test_linear_recurrence_scan_equals_the_loop_and_finite_differences(T, native, monkeypatch):
    from rnnkit.cells import scan
    from rnnkit.cells.scan import linear_recurrence
    from rnnkit.native import library
    if native and library() is None:
        pytest.skip("the C kernels are not built here")
    if not native:  # the chunked scan in PyTorch operations, the path off CPU or without a compiler
        monkeypatch.setattr(scan, "usable", lambda tensor: False)
    torch.manual_seed(T)
    a = torch.rand(2, T, 3, dtype=torch.float64, requires_grad=True)  # chunks of ~sqrt(T), last one padded
    b = torch.randn(2, T, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h, expected = h0, []
    for t in range(T):
        h = a[:, t] * h + b[:, t]
        expected.append(h)
    torch.testing.assert_close(linear_recurrence(a, b, h0), torch.stack(expected, 1))
    assert torch.autograd.gradcheck(linear_recurrence, (a, b, h0))


def _bn_by_hand(cell, x, h, c, mean_var):
    """One BN-LSTM step from its equations; mean_var(z, name) gives the statistics to use."""
    def bn(z, name):
        mean, var = mean_var(z, name)
        return (z - mean) / torch.sqrt(var + 1e-5)
    gates = (bn(x @ cell.weight_ih.T, "ih") * cell.bn_ih_gain + bn(h @ cell.weight_hh.T, "hh") * cell.bn_hh_gain
             + cell.bias_ih + cell.bias_hh)
    i, f, g, o = gates.chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(bn(c, "c") * cell.bn_c_gain + cell.bn_c_bias), c


def test_batch_norm_lstm_matches_its_equations_and_finite_differences():
    torch.manual_seed(7)
    rec = Recurrent("bnlstm", 3, 5, num_layers=2).double()
    cell = rec.cells[0]
    assert torch.allclose(cell.bn_hh_gain, torch.tensor(0.1, dtype=torch.float64)) and torch.all(cell.bn_c_bias == 0)
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    for _ in range(10):  # training: each step normalised by its batch's statistics (10 batches:
        out, (h_n, c_n, t_n) = rec(x)  # enough for evaluation to use each step's own averages)
    assert torch.all(t_n == 6)
    h = c = torch.zeros(4, 5, dtype=torch.float64)
    for t in range(6):
        h, c = _bn_by_hand(cell, x[:, t], h, c, lambda z, _: (z.mean(0), z.var(0, unbiased=False)))
    torch.testing.assert_close(h, h_n[0])
    torch.testing.assert_close(c, c_n[0])
    # evaluation: the running statistics of each step
    rec.eval()
    h = c = torch.zeros(4, 5, dtype=torch.float64)
    step = {}
    for t in range(6):
        step["t"] = t
        h, c = _bn_by_hand(cell, x[:, t], h, c, lambda z, name: (getattr(cell, f"running_mean_{name}")[step["t"]],
                                                                 getattr(cell, f"running_var_{name}")[step["t"]]))
    torch.testing.assert_close(h, rec(x)[1][0][0])
    rec.train()
    names = [name for name, _ in rec.named_parameters()]
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)

    def loss_of(*values):
        y, (last, _, _) = torch.func.functional_call(rec, dict(zip(names, values)), (x,))
        return (y * weights).sum() + last.sum()

    assert torch.autograd.gradcheck(loss_of, tuple(p.detach().clone().requires_grad_() for p in rec.parameters()))


def test_batch_norm_lstm_keeps_statistics_per_step_and_ignores_padding():
    torch.manual_seed(8)
    rec = Recurrent("bnlstm", 3, 4).double()
    cell = rec.cells[0]
    ramp = torch.arange(1, 9, dtype=torch.float64)[None, :, None]  # inputs that grow with the step
    for _ in range(200):
        rec(torch.randn(16, 8, 3, dtype=torch.float64) * ramp)
    assert int(cell.steps_seen) == 8
    spread = cell.running_var_ih[:8].mean(1)
    assert torch.all(spread[1:] > spread[:-1])  # each step has statistics of its own
    assert torch.all(cell.running_var_ih[8:] == 1)  # never seen: later steps reuse step 7's
    rec(torch.randn(16, 12, 3, dtype=torch.float64))  # steps 8-11 reached by one batch only
    rows = cell._evaluation_rows(torch.tensor([0, 7, 8, 11, 500]))
    assert rows.tolist() == [0, 7, 11, 11, 11]  # too few batches, or never reached: the last step's
    # carried state: two chunks equal one sequence, in training (batch statistics) and in evaluation
    x = torch.randn(3, 10, 3, dtype=torch.float64)
    for training in (True, False):
        rec.train(training)
        whole, whole_state = rec(x)
        first, state = rec(x[:, :6])
        second, second_state = rec(x[:, 6:], state)
        torch.testing.assert_close(torch.cat([first, second], 1), whole)
        for a, b in zip(second_state, whole_state):
            torch.testing.assert_close(a, b)
    # padding: what lies past a row's end changes nothing, in training as in evaluation
    lengths = torch.tensor([10, 4, 7])
    noisy = x.clone()
    for b, n in enumerate(lengths.tolist()):
        noisy[b, n:] = torch.randn(10 - n, 3, dtype=torch.float64) * 100
    for training in (True, False):
        rec.train(training)
        padded, padded_state = rec(x, lengths=lengths)
        other, other_state = rec(noisy, lengths=lengths)
        torch.testing.assert_close(padded, other)
        assert torch.all(padded_state[2][0] == lengths[:, None])  # each row stopped counting at its end
    rec.eval()  # in evaluation a row's result does not depend on its batch
    for b, n in enumerate(lengths.tolist()):
        alone, _ = rec(x[b:b + 1, :n])
        torch.testing.assert_close(padded[b, :n], alone[0])


@pytest.mark.parametrize("cell", CELLS)
def test_config_counts_the_parameters_of_every_cell(cell):
    from rnnkit.config import ModelConfig
    from rnnkit.models.language_model import LanguageModel
    for layers, embedding, residual, feed_forward in ((1, 5, False, 0), (3, 0, False, 0), (3, 4, cell != "gfrnn", 0),
                                                      (2, 4, cell != "gfrnn", 3 if cell != "gfrnn" else 0)):
        config = ModelConfig(vocab_size=7, cell=cell, hidden_size=6, num_layers=layers, embedding_size=embedding,
                             residual=residual, feed_forward=feed_forward)
        assert config.num_parameters() == sum(p.numel() for p in LanguageModel(config).parameters())


def test_gated_feedback_stack_matches_its_equations_and_finite_differences():
    torch.manual_seed(9)
    rec = Recurrent("gfrnn", 3, 4, num_layers=2).double()
    for c in rec.cells:
        c.reset_parameters("pytorch")
        torch.nn.init.normal_(c.reset_bias)  # gates away from one half, so a swapped gate shows
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    out, (h_n, c_n) = rec(x)
    hs = [torch.zeros(2, 4, dtype=torch.float64) for _ in range(2)]
    cs = [torch.zeros(2, 4, dtype=torch.float64) for _ in range(2)]
    for t in range(5):
        old = list(hs)  # both layers at t-1 (layer 0's new h must not reach layer 1's feedback)
        previous = torch.cat(old, 1)  # (B, 2H)
        below = x[:, t]
        for j, cell in enumerate(rec.cells):
            gates = below @ cell.weight_ih.T + cell.bias_ih
            own = hs[j] @ cell.weight_hh.T + cell.bias_hh
            reset = torch.sigmoid(below @ cell.reset_weight_ih.T + cell.reset_bias + previous @ cell.reset_weight_hh.T)
            i, f, g, o = gates.chunk(4, 1)
            oi, of, og, oo = own.chunk(4, 1)
            other = 1 - j  # the one other layer of two
            content = g + reset[:, j:j + 1] * og + reset[:, other:other + 1] * (old[other] @ cell.weight_feedback[0].T)
            cs[j] = torch.sigmoid(f + of) * cs[j] + torch.sigmoid(i + oi) * torch.tanh(content)
            hs[j] = torch.sigmoid(o + oo) * torch.tanh(cs[j])
            below = hs[j]
        torch.testing.assert_close(out[:, t], hs[1])
    torch.testing.assert_close(h_n, torch.stack(hs))
    torch.testing.assert_close(c_n, torch.stack(cs))
    names = [name for name, _ in rec.named_parameters()]
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)

    def loss_of(*values):
        y, (last, _) = torch.func.functional_call(rec, dict(zip(names, values)), (x,))
        return (y * weights).sum() + last.sum()

    assert torch.autograd.gradcheck(loss_of, tuple(p.detach().clone().requires_grad_() for p in rec.parameters()))


def test_gated_feedback_stack_carries_state_ignores_padding_and_refuses_to_run_backwards():
    from rnnkit.errors import UsageError
    torch.manual_seed(10)
    rec = Recurrent("gfrnn", 3, 4, num_layers=3).double()
    _carries_state_and_ignores_padding(rec, torch.randn(3, 9, 3, dtype=torch.float64), 4, torch.tensor([9, 3, 6]))
    with pytest.raises(UsageError, match="cannot also read sequences backwards"):
        Recurrent("gfrnn", 3, 4, num_layers=2, bidirectional=True)


def test_batch_norm_lstm_population_statistics_are_plain_means_over_the_batches_run():
    from rnnkit.cells.batchnorm import population_statistics
    torch.manual_seed(9)
    rec = Recurrent("bnlstm", 3, 4).double()
    net = torch.nn.ModuleDict({"recurrent": rec, "dropout": torch.nn.Dropout(0.5)})
    cell = rec.cells[0]
    for _ in range(30):  # running averages over 6 steps: an exponential average of the last batches
        rec(torch.randn(16, 6, 3, dtype=torch.float64))
    before = {name: getattr(cell, name).clone() for name in ("running_mean_ih", "running_var_ih", "batches")}
    batches = [torch.randn(16, 4, 3, dtype=torch.float64) * (i + 1) for i in range(4)]  # 4 steps of 6
    with population_statistics(net) as counting:
        assert counting and cell.training and not rec.training and not net["dropout"].training
        for x in batches:
            rec(x)
    assert net.training and cell.population_start is None  # modes as they were
    projections = torch.stack([x @ cell.weight_ih.t() for x in batches])  # (batches, B, 4 steps, 4H)
    torch.testing.assert_close(cell.running_mean_ih[:4], projections.mean(1).mean(0))
    torch.testing.assert_close(cell.running_var_ih[:4], projections.var(1).mean(0))  # unbiased, as PyTorch keeps
    assert torch.equal(cell.running_mean_ih[4:6], before["running_mean_ih"][4:6])  # not reached: kept
    assert cell.batches[:4].tolist() == (before["batches"][:4] + 4).tolist()
    with population_statistics(torch.nn.Linear(2, 2)) as counting:
        assert not counting


@pytest.mark.parametrize("cell", ["mingru", "lstm", "bnlstm"])
def test_residual_stack_adds_each_layer_to_its_normalised_input(cell):
    torch.manual_seed(11)
    rec = Recurrent(cell, 3, 4, num_layers=3, residual=True).double()
    assert not rec.is_fused  # per-layer arithmetic: layer by layer
    _matches_hand_wiring(rec.eval(), lambda k, v: v)


def test_feed_forward_blocks_follow_each_layer_of_a_residual_stack():
    from rnnkit.errors import UsageError
    torch.manual_seed(12)
    rec = Recurrent("mingru", 3, 4, num_layers=3, residual=True, feed_forward=2).double().eval()

    def block(k, v):  # v + W2 GELU(W1 LayerNorm(v))
        ff = rec.feed_forwards[k]
        return v + ff.down(torch.nn.functional.gelu(ff.up(ff.norm(v))))

    _matches_hand_wiring(rec, block)
    v = torch.randn(5, 4, dtype=torch.float64)  # a block's dropout acts on its output only
    kept = rec.feed_forwards[0](v, 0.5) - v
    full = block(0, v) - v
    assert torch.all((kept == 0) | torch.isclose(kept, 2 * full)) and (kept == 0).any()
    with pytest.raises(UsageError, match="add --residual"):
        Recurrent("mingru", 3, 4, num_layers=2, feed_forward=2)


def _matches_hand_wiring(rec: Recurrent, block) -> None:
    """A 3-layer residual stack against its layers wired by hand: layer 0, then each layer above adds
    its output on a LayerNorm of its input to that input; block(k, v) follows layer k; the top is
    normalised. Sampling's step path and padded batches give the same outputs."""
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    out, _ = rec(x)
    state = rec.init_state(2, dtype=torch.float64)
    below = block(0, Recurrent.forward(_one_layer(rec, 0), x, tuple(s[:1] for s in state))[0])
    for k in (1, 2):
        layer_out, _ = _one_layer(rec, k)(rec.norms[k - 1](below), tuple(s[k:k + 1] for s in state))
        below = block(k, below + layer_out)
    torch.testing.assert_close(out, rec.final_norm(below))
    states = rec.layer_states(rec.init_state(2, dtype=torch.float64))
    for t in range(6):
        y, states = rec.step(x[:, t], states)
        torch.testing.assert_close(y, out[:, t])
    lengths = torch.tensor([6, 3])
    padded, _ = rec(x, lengths=lengths)
    torch.testing.assert_close(padded[1, :3], rec(x[1:, :3])[0][0])
    assert torch.all(padded[1, 3:] == 0)


def _one_layer(rec: Recurrent, k: int) -> Recurrent:
    single = Recurrent(type(rec.cells[k]), rec.cells[k].input_size, rec.hidden_size).double().eval()
    single.cells[0] = rec.cells[k]
    single._fused = []
    return single
