"""The native kernels (rnnkit/native): the same numbers as the PyTorch step path, finite-difference
gradients, NaN kept, and a clean fall-back where they cannot be built."""

import pytest
import torch

import rnnkit.cells.layernorm_sequence as sequence
from rnnkit import native
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
    monkeypatch.setattr(sequence, "library", lambda: None)
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
