"""Options a layer adds to its cells: zoneout, weight drop and residual stacks with feed-forward
blocks, each doing what it says in training and evaluation, and their bad values refused."""

import pytest
import torch

from rnnkit.recurrent import Recurrent


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
