"""Collapsible linear blocks: exact collapse, explicit == online, and loading either checkpoint form."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from harness.complexity import count_complexity
from harness.models.clb import (
    CLBIMDN,
    CLBIMDNForEval,
    CollapsibleConv2d,
    collapse_state_dict,
    is_training_form,
    load_clb_state_dict,
)
from harness.models.imdn import IMDN

# Every way of choosing the expansion width and the expanded layers that CLBIMDN offers.
SETTINGS = [
    pytest.param({"expansion": 1}, id="expansion-1"),
    pytest.param({"expansion": 2}, id="expansion-2"),
    pytest.param({"expansion": 4}, id="expansion-4"),
    pytest.param({"hidden_channels": 80}, id="hidden-80"),
    pytest.param({"expanded": "body", "expansion": 2}, id="body"),
    pytest.param({"expanded": "none"}, id="none"),
    pytest.param({"expanded": ["model.0", "model.1.sub.*.conv1x1", "model.2"]}, id="patterns"),
]


def _randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random parameters of a realistic scale, biases included (default init zeroes nothing here)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model


@pytest.mark.parametrize("settings", SETTINGS)
def test_collapse_is_exact(settings):
    torch.manual_seed(0)
    model = _randomised(CLBIMDN(**settings)).eval()
    collapsed = model.collapse()
    assert type(collapsed) is IMDN
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = model(x), collapsed(x)
    assert expected.abs().max() > 0.1  # the comparison is not between two near-zero outputs
    assert (expected - got).abs().max().item() < 1e-4
    assert list(collapsed.state_dict()) == list(IMDN(nb=7).state_dict())


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize(("in_channels", "out_channels"), [(6, 6), (4, 6), (6, 3)])
def test_single_block_folds_against_a_direct_computation(kernel_size, in_channels, out_channels):
    block = _randomised(CollapsibleConv2d(in_channels, out_channels, kernel_size, 2 * out_channels), seed=3)
    x = torch.rand(2, in_channels, 9, 11)
    # The block written out directly: k x k conv, 1 x 1 conv, identity when widths match.
    hidden = F.conv2d(x, block.expand.weight, block.expand.bias, padding=kernel_size // 2)
    expected = F.conv2d(hidden, block.squeeze.weight, block.squeeze.bias)
    if in_channels == out_channels:
        expected = expected + x
    conv = block.collapse()
    with torch.no_grad():
        assert (conv(x) - expected).abs().max().item() < 1e-5
        assert (block(x) - expected).abs().max().item() < 1e-5


def test_collapsed_costs_exactly_the_plain_seven_block_imdn():
    collapsed = CLBIMDN(expansion=2).collapse()
    plain = IMDN(nb=7)
    assert count_complexity(collapsed, (3, 64, 64)) == count_complexity(plain, (3, 64, 64))
    assert sum(p.numel() for p in collapsed.parameters()) == 790_496


def _losses_and_grads(model: CLBIMDN, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    out = model(x)
    (out - x.repeat_interleave(4, 2).repeat_interleave(4, 3)).abs().mean().backward()
    return out.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("settings", [{"expansion": 2}, {"expanded": "body", "hidden_channels": 72}])
def test_online_and_explicit_give_the_same_outputs_and_gradients(settings):
    torch.manual_seed(1)
    explicit = _randomised(CLBIMDN(nb=3, collapse_mode="explicit", **settings), seed=1)
    online = copy.deepcopy(explicit)
    online.set_collapse_mode("online")
    x = torch.rand(2, 3, 20, 20)
    out_e, grads_e = _losses_and_grads(explicit, x)
    out_o, grads_o = _losses_and_grads(online, x)
    assert (out_e - out_o).abs().max().item() < 1e-4
    assert grads_e.keys() == grads_o.keys()
    assert any(".expand." in name for name in grads_e)  # gradients reach the expanded parameters
    for name, grad in grads_e.items():
        scale = grad.abs().max().item()
        assert scale > 0, name
        assert (grad - grads_o[name]).abs().max().item() <= 1e-4 * scale, name


def test_online_mode_runs_one_convolution_per_block(monkeypatch):
    model = CLBIMDN(nb=1, expansion=2, collapse_mode="online")
    calls = []
    original = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: calls.append(1) or original(*a, **k))
    with torch.no_grad():
        model(torch.rand(1, 3, 8, 8))
    # As many convolutions as the collapsed network: each block is one, plus the plain 1x1s.
    assert len(calls) == count_complexity(model.collapse(), (3, 8, 8)).num_conv


def test_checkpoints_hold_only_trained_parameters():
    model = CLBIMDN(expansion=1)
    state = model.state_dict()
    assert is_training_form(state)
    assert not any("identity" in key for key in state)
    assert set(state) == {name for name, _ in model.named_parameters()}


def test_team26_weights_load_strictly_into_the_evaluated_form(model_zoo_dir):
    state = torch.load(model_zoo_dir / "team26_imdn_nb7.pth", map_location="cpu", weights_only=True)
    assert not is_training_form(state)
    model = CLBIMDNForEval()
    model.load_state_dict(state, strict=True)
    hooked = CLBIMDNForEval()
    hooked.load_submission_state_dict(state)
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value)
        assert torch.equal(hooked.state_dict()[key], value)


def test_a_training_form_checkpoint_is_collapsed_on_load(tmp_path: Path):
    trained = _randomised(CLBIMDN(expansion=1), seed=5).eval()
    path = tmp_path / "training_form.pth"
    torch.save(trained.state_dict(), path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = CLBIMDNForEval().eval()
    model.load_submission_state_dict(state)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert (model(x) - trained(x)).abs().max().item() < 1e-4
    folded = collapse_state_dict(state)
    assert list(folded) == list(IMDN(nb=7).state_dict())


def test_a_checkpoint_that_fits_neither_form_is_refused():
    state = IMDN(nb=6).state_dict()
    with pytest.raises(RuntimeError, match="Missing key"):
        load_clb_state_dict(CLBIMDNForEval(), state)


def test_init_from_plain_weights_keeps_the_function(model_zoo_dir):
    state = torch.load(model_zoo_dir / "team26_imdn_nb7.pth", map_location="cpu", weights_only=True)
    plain = IMDN(nb=7).eval()
    plain.load_state_dict(state)
    model = CLBIMDN(expansion=2).eval()
    model.init_from_plain(state)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert (model(x) - plain(x)).abs().max().item() < 1e-4
    for key, value in model.collapse().state_dict().items():
        assert torch.allclose(value, state[key], atol=1e-6), key


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"expanded": "everything"}, "expanded must be one of"),
        ({"expanded": ["model.9"]}, "match no convolution"),
        ({"expansion": 0}, "expansion must be at least 1"),
        ({"hidden_channels": 32}, "must expand"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        CLBIMDN(**settings)


def test_unknown_collapse_mode_is_refused():
    with pytest.raises(ValueError, match="collapse_mode"):
        CLBIMDN(collapse_mode="lazy")
