"""Cells with equations of their own against those equations and finite differences: minGRU / minLSTM
and their parallel scan, IndRNN, the batch-normalised LSTM and the gated-feedback stack."""

import pytest
import torch

from rnnkit.cells import CELL_TYPES
from rnnkit.recurrent import Recurrent


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
