"""The gated-feedback LSTM stack as one autograd node (rnnkit/cells/feedback_sequence.py and
rnnkit/native/gfrnn.c): the same numbers and gradients as the step path, finite differences,
dropout, threads, packed weights, and padding left to the step path."""

import copy

import pytest
import torch
import torch.nn.functional as F

import rnnkit.native.calls as native_calls
import rnnkit.recurrent as recurrent
from rnnkit import native
from rnnkit.cells.feedback_sequence import GatedFeedbackSequence, stacked_weights
from rnnkit.recurrent import Recurrent

pytestmark = pytest.mark.skipif(native.library() is None, reason="no C compiler: the native kernels are not built")


def _stack(layers: int, hidden: int, dtype: torch.dtype, dropout: float = 0.0, seed: int = 5) -> Recurrent:
    torch.manual_seed(seed)
    rec = Recurrent("gfrnn", 5, hidden, num_layers=layers, dropout=dropout).to(dtype).train()
    with torch.no_grad():
        for p in rec.parameters():
            p.add_(0.2 * torch.randn_like(p))  # reset biases and gates away from their initial values
    return rec


def _run(rec: Recurrent, x: torch.Tensor, state: tuple) -> list[torch.Tensor]:
    """Outputs, final state and the gradients of every parameter, x and the initial state."""
    rec.zero_grad()
    x = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in state)
    out, new = rec(x, state)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    ((out * weights).sum() + new[0].sum() * 0.3 - (new[1] * new[0]).sum() * 0.7).backward()
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in rec.parameters()]
    return [out.detach(), *(s.detach() for s in new), x.grad, *(s.grad for s in state), *grads]


def _counting(monkeypatch) -> list:
    calls = []
    real = GatedFeedbackSequence.apply
    monkeypatch.setattr(GatedFeedbackSequence, "apply", lambda *a: calls.append(1) or real(*a))
    return calls


def _assert_matches_step_path(monkeypatch, rec: Recurrent, x: torch.Tensor, state: tuple, tol: float) -> None:
    calls = _counting(monkeypatch)
    fast = _run(rec, x, state)
    assert len(calls) == 1  # the whole stack and chunk in one node
    monkeypatch.setattr(native_calls, "library", lambda: None)
    slow = _run(copy.deepcopy(rec), x, state)
    assert len(calls) == 1  # the reference ran step by step
    names = ["out", "h", "c", "x", "h0", "c0"] + [n for n, _ in rec.named_parameters()]
    for name, a, b in zip(names, fast, slow):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol, msg=name)


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_whole_stack_matches_the_step_path(monkeypatch, layers, dtype, tol):
    rec = _stack(layers, 6, dtype)
    x = torch.randn(3, 7, 5, dtype=dtype)
    state = tuple(0.5 * torch.randn(layers, 3, 6, dtype=dtype) for _ in range(2))
    _assert_matches_step_path(monkeypatch, rec, x, state, tol)


def test_whole_stack_applies_dropout_as_the_step_path_does(monkeypatch):
    """Both paths given the same masks on the upper layer's input: the same outputs and gradients.
    The step path draws a (B, H) mask per step, the whole stack all (L-1, T, B, H) at once."""
    T, B, H = 6, 3, 5
    masks = (torch.rand(1, T, B, H, generator=torch.Generator().manual_seed(3)) > 0.3).double() / 0.7
    drawn = []

    def fixed_dropout(x, p, training=True):
        if x.dim() == 4:  # the whole stack's masks, drawn as dropout of ones
            return x * masks
        drawn.append(1)
        return x * masks[0, len(drawn) - 1]

    rec = _stack(2, H, torch.float64, dropout=0.3)
    x = torch.randn(B, T, 5, dtype=torch.float64)
    state = tuple(0.5 * torch.randn(2, B, H, dtype=torch.float64) for _ in range(2))
    monkeypatch.setattr(recurrent.F, "dropout", fixed_dropout)
    _assert_matches_step_path(monkeypatch, rec, x, state, 1e-10)
    assert len(drawn) == T  # the step path did draw once per step


def test_whole_stack_matches_finite_differences():
    rec = _stack(2, 3, torch.float64)
    T, B, L, H = 4, 2, 2, 3
    xp = torch.randn(T, B, 4 * H + L, dtype=torch.float64)
    h0, c0 = (0.5 * torch.randn(L, B, H, dtype=torch.float64) for _ in range(2))
    masks = (torch.rand(L - 1, T, B, H) > 0.4).double() / 0.6
    weights = [w.detach().clone() for group in stacked_weights(list(rec.cells)) for w in group]
    biases = torch.stack([c.bias_hh.detach() for c in rec.cells])
    leaves = [t.clone().requires_grad_() for t in (xp, h0, c0)]
    params = [t.clone().requires_grad_() for t in (biases, *weights)]
    assert torch.autograd.gradcheck(lambda a, h, c, b, *w: GatedFeedbackSequence.apply(a, h, c, masks, b, *w),
                                    (*leaves, *params))


def test_whole_stack_gives_the_same_bits_on_any_number_of_threads(monkeypatch):
    # B x 4H x L >= 16,384: the kernels split the rows among threads
    rec = _stack(2, 128, torch.float32)
    x = torch.randn(32, 4, 5)
    state = tuple(0.5 * torch.randn(2, 32, 128) for _ in range(2))
    results = {}
    for threads in (1, 2, 3):
        monkeypatch.setattr(native_calls.torch, "get_num_threads", lambda: threads)
        results[threads] = _run(rec, x, state)
        monkeypatch.undo()
    for threads in (2, 3):
        for a, b in zip(results[1], results[threads]):
            assert torch.equal(a, b)


def test_whole_stack_on_packed_weights_matches_the_step_path(monkeypatch):
    if not native_calls._packed_linear_works():
        pytest.skip("this PyTorch has no packed linear operators")
    rec = _stack(2, 256, torch.float32, seed=7)
    x = torch.randn(8, 4, 5)
    state = tuple(0.5 * torch.randn(2, 8, 256) for _ in range(2))
    packed = []
    monkeypatch.setattr(native_calls, "_packed_linear_works", lambda: packed.append(1) or True)
    _assert_matches_step_path(monkeypatch, rec, x, state, 2e-4)
    assert len(packed) == 2 * 3  # W_rec of each layer and the upper layer's input weight, both ways


def test_padding_and_autocast_take_the_step_path(monkeypatch):
    rec = _stack(2, 6, torch.float32).eval()
    calls = _counting(monkeypatch)
    x = torch.randn(3, 6, 5)
    full, _ = rec(x, lengths=torch.tensor([6, 6, 6]))  # equal lengths: no mask, the whole stack
    assert len(calls) == 1
    padded, _ = rec(x, lengths=torch.tensor([6, 4, 2]))
    assert len(calls) == 1
    assert torch.all(padded[1, 4:] == 0) and torch.all(padded[2, 2:] == 0)
    torch.testing.assert_close(padded[0], full[0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rec(x)
    assert len(calls) == 1


def test_a_gated_feedback_language_model_learns_on_the_whole_stack_path():
    """A repeated phrase: 60 Adam steps take the loss far below its start (log 8 = 2.08 nats)."""
    torch.manual_seed(0)
    phrase = torch.tensor([0, 3, 1, 4, 1, 5, 2, 6, 5, 3, 7, 2])
    data = phrase.repeat(40)
    rec = Recurrent("gfrnn", 8, 32, num_layers=2, dropout=0.1)
    head = torch.nn.Linear(32, 8)
    opt = torch.optim.Adam([*rec.parameters(), *head.parameters()], lr=1e-2)
    x = F.one_hot(data[:476], 8).float().view(4, 119, 8)
    y = data[1:477].view(4, 119)
    for _ in range(60):
        out, _ = rec(x)
        loss = F.cross_entropy(head(out).reshape(-1, 8), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3
