"""Every experiment runs at its smoke size and writes its figure and numbers; the synthetic
tasks and bracket matching behave as documented."""

import json

import pytest
import torch

from rnnkit.experiments import EXPERIMENTS, run_experiment
from rnnkit.experiments.language import bracket_pairs
from rnnkit.tasks import adding_problem


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_runs_at_smoke_size(name, tmp_path):
    result = run_experiment(name, "smoke", tmp_path, log=lambda line: None)
    assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    assert saved["experiment"] == name and saved["size"] == "smoke" and saved == json.loads(json.dumps(result))


def test_adding_problem_targets_are_the_sum_of_the_two_marked_values():
    x, y = adding_problem(64, 30, torch.Generator().manual_seed(0))
    assert x.shape == (64, 30, 2) and y.shape == (64, 1)
    markers = x[:, :, 1]
    assert torch.equal(markers.sum(dim=1), torch.full((64,), 2.0))
    assert torch.all(markers[:, :15].sum(dim=1) == 1)  # one in each half
    assert torch.allclose((x[:, :, 0] * markers).sum(dim=1, keepdim=True), y)


def test_bracket_pairs():
    assert bracket_pairs("f(a[1], {b: (c)})") == [(3, 5, True), (12, 14, True), (8, 15, True), (1, 16, True)]
    assert bracket_pairs("(]") == [(0, 1, False)]
    assert bracket_pairs(")") == []
