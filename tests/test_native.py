"""The native kernels (rnnkit/native) of the LN-LSTM and BN-LSTM: the same numbers as the PyTorch
step path, finite-difference gradients, NaN kept, and a clean fall-back where they cannot be built."""

import copy

import pytest
import torch

import rnnkit.native.calls as native_calls
from rnnkit import native
from rnnkit.cells.batchnorm import MAX_STEPS
from rnnkit.cells.batchnorm_sequence import BatchNormLSTMSequence
from rnnkit.cells.layernorm_sequence import BlockLayerNorm, LayerNormLSTMSequence
from rnnkit.recurrent import Recurrent

pytestmark = pytest.mark.skipif(native.library() is None, reason="no C compiler: the native kernels are not built")


def _perturbed_stack(dtype: torch.dtype, bidirectional: bool = False) -> Recurrent:
    torch.manual_seed(5)
    rec = Recurrent("lnlstm", 4, 6, num_layers=2, bidirectional=bidirectional).to(dtype)
    with torch.no_grad():
        for p in rec.parameters():
            p.add_(0.2 * torch.randn_like(p))  # gains and biases away from 1 and 0
    return rec


def _run(rec: Recurrent, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, list[torch.Tensor]]:
    rec.zero_grad()
    out, new = rec(x, state)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    # the final state in the loss too, so its gradient path (carried state) is checked
    ((out * weights).sum() + new[0].sum() * 0.3 - new[1].sum() * 0.7).backward()
    return out.detach(), tuple(s.detach() for s in new), [p.grad.clone() for p in rec.parameters()]


@pytest.mark.parametrize("dtype,tol,bidirectional", [(torch.float64, 1e-10, False), (torch.float32, 2e-5, False),
                                                     (torch.float32, 2e-5, True)])
def test_native_layer_norm_lstm_matches_the_step_path(monkeypatch, dtype, tol, bidirectional):
    rec = _perturbed_stack(dtype, bidirectional)
    x = torch.randn(3, 9, 4, dtype=dtype)
    state = tuple(0.5 * torch.randn(rec.num_layers * rec.directions, 3, 6, dtype=dtype) for _ in range(2))
    calls = []
    real_apply = LayerNormLSTMSequence.apply
    monkeypatch.setattr(LayerNormLSTMSequence, "apply", lambda *a: calls.append(1) or real_apply(*a))
    fast = _run(rec, x, state)
    runs = rec.num_layers * rec.directions
    assert len(calls) == runs  # every layer and direction ran on the kernels
    monkeypatch.setattr(native_calls, "library", lambda: None)
    slow = _run(rec, x, state)
    assert len(calls) == runs  # and the reference did not
    torch.testing.assert_close(fast[0], slow[0], atol=tol, rtol=tol)
    for a, b in zip(fast[1], slow[1]):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    for (name, _), a, b in zip(rec.named_parameters(), fast[2], slow[2]):
        torch.testing.assert_close(a, b, atol=tol * 10, rtol=tol * 10, msg=name)


def test_native_functions_match_finite_differences():
    torch.manual_seed(6)
    T, B, H = 5, 2, 3
    d = dict(dtype=torch.float64, requires_grad=True)
    inputs = (torch.randn(T, B, 4 * H, **d), torch.randn(B, H, **d), torch.randn(B, H, **d),
              torch.randn(4 * H, H, **d), 1 + 0.3 * torch.randn(4 * H, **d), torch.randn(4 * H, **d),
              1 + 0.3 * torch.randn(H, **d), torch.randn(H, **d))
    assert torch.autograd.gradcheck(LayerNormLSTMSequence.apply, inputs)
    z = torch.randn(2, 3, 4 * H, **d)
    gain, bias = torch.randn(4 * H, **d), torch.randn(4 * H, **d)
    assert torch.autograd.gradcheck(lambda z, g, b: BlockLayerNorm.apply(z, g, b, H), (z, gain, bias))


def test_native_kernels_keep_nan_so_a_diverged_run_shows():
    rec = _perturbed_stack(torch.float32)
    with torch.no_grad():
        rec.cells[0].weight_hh[0, 0] = float("nan")
    out, _ = rec(torch.randn(2, 4, 4))
    assert torch.isnan(out[:, 1:]).any()  # from the second step on, h has met the NaN weight


def test_native_kernels_fall_back_when_switched_off_or_unbuildable(monkeypatch, tmp_path):
    rec = _perturbed_stack(torch.float32)
    x = torch.randn(2, 5, 4)
    expected, _ = rec(x)
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    try:
        for env in ({"RNNKIT_NATIVE": "0"}, {"CC": "false"}, {"CC": str(tmp_path / "no-such-compiler")}):
            native.library.cache_clear()
            with monkeypatch.context() as m:
                for key, value in env.items():
                    m.setenv(key, value)
                assert native.library() is None
                out, _ = rec(x)  # the step path
                torch.testing.assert_close(out, expected, atol=2e-5, rtol=2e-5)
        assert not list((tmp_path / "cache").rglob("*.so"))
        native.library.cache_clear()
        assert native.library() is not None  # built afresh into the cache named above
        assert len(list((tmp_path / "cache" / "native").glob("kernels-*.so"))) == 1
    finally:
        native.library.cache_clear()


def _counting(monkeypatch, function) -> list:
    calls = []
    real_apply = function.apply
    monkeypatch.setattr(function, "apply", lambda *a: calls.append(1) or real_apply(*a))
    return calls


@pytest.mark.parametrize("dtype,tol,start", [(torch.float64, 1e-10, 3), (torch.float32, 2e-5, 3),
                                             (torch.float64, 1e-10, MAX_STEPS - 6), (torch.float32, 2e-5, MAX_STEPS)])
def test_native_batch_norm_lstm_trains_as_the_step_path_does(monkeypatch, dtype, tol, start):
    """A carried state `start` steps in: the chunk's statistics are steps start..start+8's. From
    MAX_STEPS - 6 on, five steps have rows of their own and the last row is updated four times in
    turn; at MAX_STEPS, nine times. The last row starts at 8 batches, so the momentum goes from
    1 / count to its floor within the chunk."""
    torch.manual_seed(7)
    rec = Recurrent("bnlstm", 4, 6, num_layers=2).to(dtype).train()
    with torch.no_grad():
        for p in rec.parameters():
            p.add_(0.2 * torch.randn_like(p))
        for cell in rec.cells:
            cell.batches[MAX_STEPS - 1] = 8
            cell.running_mean_hh[MAX_STEPS - 1].normal_()
            cell.running_var_c[MAX_STEPS - 1].uniform_(0.5, 2)
    reference = copy.deepcopy(rec)
    x = torch.randn(5, 9, 4, dtype=dtype)
    state = (torch.randn(2, 5, 6, dtype=dtype), torch.randn(2, 5, 6, dtype=dtype),
             torch.full((2, 5, 6), float(start), dtype=dtype))
    calls = _counting(monkeypatch, BatchNormLSTMSequence)
    fast = _run(rec, x, state)
    assert len(calls) == 2
    monkeypatch.setattr(native_calls, "library", lambda: None)
    slow = _run(reference, x, state)
    assert len(calls) == 2
    torch.testing.assert_close(fast[0], slow[0], atol=tol, rtol=tol)
    for a, b in zip(fast[1], slow[1]):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    for (name, _), a, b in zip(rec.named_parameters(), fast[2], slow[2]):
        torch.testing.assert_close(a, b, atol=tol * 10, rtol=tol * 10, msg=name)
    # the running statistics, batch counts and steps seen moved exactly as the step path moved them
    for (name, a), b in zip(rec.named_buffers(), reference.buffers()):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol, msg=name)
    assert int(rec.cells[0].steps_seen) == min(start + 9, MAX_STEPS)
    assert int(rec.cells[0].batches[MAX_STEPS - 1]) == 8 + 9 - min(9, max(0, MAX_STEPS - 1 - start))
    assert int(rec.cells[0].batches[min(start, MAX_STEPS - 2)]) == (start < MAX_STEPS - 1)


def test_native_batch_norm_lstm_leaves_other_cases_to_the_step_path(monkeypatch):
    torch.manual_seed(8)
    rec = Recurrent("bnlstm", 4, 6, num_layers=1)
    calls = _counting(monkeypatch, BatchNormLSTMSequence)
    x = torch.randn(3, 5, 4)
    zeros = torch.zeros(1, 3, 6)
    rec.eval()
    rec(x)  # evaluation: running statistics
    rec.train()
    rec(x, (zeros, zeros, torch.tensor([0.0, 1.0, 2.0])[None, :, None].expand(1, 3, 6)))  # rows at different steps
    rec(x[:1])  # one row: no batch statistics
    assert calls == []
    rec(x)
    assert calls == [1]


def test_native_batch_norm_function_matches_finite_differences():
    torch.manual_seed(9)
    T, B, H = 4, 3, 2
    d = dict(dtype=torch.float64, requires_grad=True)
    inputs = (torch.randn(T, B, 4 * H, **d), torch.randn(B, H, **d), torch.randn(B, H, **d),
              torch.randn(4 * H, H, **d), 1 + 0.3 * torch.randn(4 * H, **d), torch.randn(4 * H, **d),
              1 + 0.3 * torch.randn(4 * H, **d), 1 + 0.3 * torch.randn(H, **d), torch.randn(H, **d))
    assert torch.autograd.gradcheck(lambda *a: BatchNormLSTMSequence.apply(*a)[:3], inputs)


def test_equal_lengths_take_the_kernels_and_padding_the_step_path(monkeypatch):
    rec = _perturbed_stack(torch.float32)
    calls = _counting(monkeypatch, LayerNormLSTMSequence)
    x = torch.randn(3, 6, 4)
    expected, _ = rec(x)
    assert len(calls) == 2
    full, _ = rec(x, lengths=torch.tensor([6, 6, 6]))  # a classifier's batch of equal lengths: no mask
    assert len(calls) == 4
    torch.testing.assert_close(full, expected)
    padded, _ = rec(x, lengths=torch.tensor([6, 4, 2]))
    assert len(calls) == 4  # padding: the step path, which masks
    assert torch.all(padded[1, 4:] == 0) and torch.all(padded[2, 2:] == 0)


def _kernel_run(function, inputs: tuple) -> list[torch.Tensor]:
    """Outputs and input gradients of one native autograd function (the first three outputs)."""
    leaves = tuple(t.detach().clone().requires_grad_() for t in inputs)
    outs = function.apply(*leaves)[:3]
    weights = [torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o) for o in outs]
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    return [o.detach() for o in outs] + [t.grad for t in leaves]


@pytest.mark.parametrize("function", [LayerNormLSTMSequence, BatchNormLSTMSequence])
def test_native_kernels_give_the_same_bits_on_any_number_of_threads(monkeypatch, function):
    # large enough (B x 4H >= 16,384) that the kernels split rows and columns among threads
    torch.manual_seed(10)
    T, B, H = 4, 32, 128
    inputs = [torch.randn(T, B, 4 * H), torch.randn(B, H), torch.randn(B, H), 0.1 * torch.randn(4 * H, H),
              1 + 0.3 * torch.randn(4 * H)]
    # LN-LSTM: gain_hh, bias_hh; BN-LSTM: gain_ih, bias, gain_hh
    inputs += [torch.randn(4 * H)] + ([1 + 0.3 * torch.randn(4 * H)] if function is BatchNormLSTMSequence else [])
    inputs += [1 + 0.3 * torch.randn(H), torch.randn(H)]
    mm_threads = torch.get_num_threads()  # PyTorch's own multiplies keep their count: only the kernels' varies
    results = {}
    for threads in (1, 2, 3):
        monkeypatch.setattr(native_calls.torch, "get_num_threads", lambda: threads)
        results[threads] = _kernel_run(function, tuple(inputs))
        monkeypatch.undo()
        assert torch.get_num_threads() == mm_threads
    for threads in (2, 3):
        for a, b in zip(results[1], results[threads]):
            assert torch.equal(a, b)


def _stack_state(cell: str, batch: int, hidden: int, dtype: torch.dtype) -> tuple:
    """A random initial (h, c) of a 2-layer stack, plus the BN-LSTM's step count at 0."""
    state = tuple(0.5 * torch.randn(2, batch, hidden, dtype=dtype) for _ in range(2))
    return state + ((torch.zeros(2, batch, hidden, dtype=dtype),) if cell == "bnlstm" else ())


def _assert_native_matches_step_path(monkeypatch, rec: Recurrent, x: torch.Tensor, state: tuple,
                                     output_tol: tuple[float, float], grad_tol: tuple[float, float]) -> None:
    """rec run on the native kernels, then a copy of it on the step path: outputs and every gradient
    agree within (atol, rtol)."""
    reference = copy.deepcopy(rec)
    fast = _run(rec, x, state)
    monkeypatch.setattr(native_calls, "library", lambda: None)
    slow = _run(reference, x, state)
    torch.testing.assert_close(fast[0], slow[0], atol=output_tol[0], rtol=output_tol[1])
    for (name, _), a, b in zip(rec.named_parameters(), fast[2], slow[2]):
        torch.testing.assert_close(a, b, atol=grad_tol[0], rtol=grad_tol[1], msg=name)


@pytest.mark.parametrize("cell", ["lnlstm", "bnlstm"])
def test_native_kernels_on_threads_match_the_step_path(monkeypatch, cell):
    torch.manual_seed(11)
    rec = Recurrent(cell, 8, 128, num_layers=2).double().train()
    with torch.no_grad():
        for p in rec.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(32, 4, 8, dtype=torch.float64)
    state = _stack_state(cell, 32, 128, torch.float64)
    monkeypatch.setattr(native_calls.torch, "get_num_threads", lambda: 2)
    _assert_native_matches_step_path(monkeypatch, rec, x, state, (1e-10, 1e-10), (1e-9, 1e-9))


def test_step_multiplier_packs_float32_weights_and_falls_back_to_mm(monkeypatch):
    generator = torch.Generator().manual_seed(5)
    weight = torch.randn(1024, 256, generator=generator)
    x = torch.randn(8, 256, generator=generator)
    exact = x.double() @ weight.double().t()
    torch.testing.assert_close(native_calls.step_multiplier(weight, 8)(x).double(), exact, atol=1e-3, rtol=1e-5)
    # float64 (the gradient checks' precision), narrow weights and a PyTorch without the packed
    # operators take torch.mm
    assert torch.equal(native_calls.step_multiplier(weight.double(), 8)(x.double()), exact)
    assert torch.equal(native_calls.step_multiplier(weight[:, :64], 8)(x[:, :64]), x[:, :64] @ weight[:, :64].t())
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)  # the user's switch for oneDNN is respected
    assert torch.equal(native_calls.step_multiplier(weight, 8)(x), x @ weight.t())
    monkeypatch.undo()
    assert torch.backends.mkldnn.enabled
    monkeypatch.setattr(native_calls, "_packed_linear_works", lambda: False)
    assert torch.equal(native_calls.step_multiplier(weight, 8)(x), x @ weight.t())


@pytest.mark.parametrize("cell", ["lnlstm", "bnlstm"])
def test_native_kernels_on_packed_weights_match_the_step_path(monkeypatch, cell):
    # H = 256: wide enough for the recurrent multiplies to run on oneDNN's packed weights
    if not native_calls._packed_linear_works():
        pytest.skip("this PyTorch has no packed linear operators")
    torch.manual_seed(12)
    rec = Recurrent(cell, 8, 256, num_layers=2).train()
    x = torch.randn(16, 5, 8)
    state = _stack_state(cell, 16, 256, torch.float32)
    packed = []  # consulted only once a weight is float32 and wide enough: then the packed branch runs
    monkeypatch.setattr(native_calls, "_packed_linear_works", lambda: packed.append(1) or True)
    _assert_native_matches_step_path(monkeypatch, rec, x, state, (1e-5, 1e-4), (1e-4, 1e-3))
    assert len(packed) == 2 * 2  # each layer: W_hh forwards, W_hh^T backwards (the step path packs nothing)


def test_native_linear_recurrence_covers_every_column_on_any_number_of_threads(monkeypatch):
    from rnnkit.cells import scan
    if native.library() is None:
        pytest.skip("the C kernels are not built here")
    torch.manual_seed(3)
    # B·T·H = 77,700: threads split the 111 columns at multiples of 16, across sequence boundaries
    a = torch.rand(3, 700, 37, dtype=torch.float64)
    b, h0 = torch.randn_like(a), torch.randn(3, 37, dtype=torch.float64)

    def both() -> tuple[torch.Tensor, torch.Tensor]:  # forwards, and backwards as the gradient runs
        return scan._scan(a, b, h0), scan._scan(a, b, torch.zeros_like(h0), reverse=True, shifted=True)

    monkeypatch.setattr(scan, "usable", lambda tensor: False)
    expected = both()  # the chunked scan in PyTorch operations
    monkeypatch.undo()
    for threads in (1, 2, 3):
        monkeypatch.setattr(native_calls.torch, "get_num_threads", lambda: threads)
        got = both()
        monkeypatch.undo()
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)
