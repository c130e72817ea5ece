"""The complexity counter reproduces the organisers' published numbers and their counting rules."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from harness.complexity import Complexity, count_complexity, parse_input_size
from harness.models.clb import CLBIMDN, CLBIMDNForEval
from harness.models.imdn import IMDN
from harness.models.rfdn import RFDN

# The organisers' figures at a 3x256x256 input (NTIRE 2022 Efficient SR report and test_demo.py logs).
ORGANISERS = {
    "imdn_baseline": (lambda: IMDN(nb=8), Complexity(893_936, 58_531_512_320, 154_140_672, 43)),
    "rfdn_baseline": (RFDN, Complexity(433_448, 27_102_622_560, 112_034_240, 64)),
    "team26_imdn_nb7": (lambda: IMDN(nb=7), Complexity(790_496, 51_757_711_360, 136_314_880, 38)),
    "clb_imdn": (CLBIMDNForEval, Complexity(790_496, 51_757_711_360, 136_314_880, 38)),
    "clb_imdn_collapsed": (
        lambda: CLBIMDN(expansion=1).collapse(),
        Complexity(790_496, 51_757_711_360, 136_314_880, 38),
    ),
}


@pytest.mark.parametrize("name", sorted(ORGANISERS))
def test_matches_the_organisers_numbers(name):
    build, expected = ORGANISERS[name]
    assert count_complexity(build()) == expected


@pytest.mark.parametrize(
    ("blocks", "millions"), [(8, "0.8939"), (7, "0.7905"), (6, "0.6871"), (5, "0.5836"), (4, "0.4802")]
)
def test_pruned_imdn_params_match_the_seed_table_1(blocks, millions):
    params = sum(p.numel() for p in IMDN(nb=blocks).parameters())
    assert f"{params / 1e6:.4f}" == millions


class _Toy(nn.Module):
    """Every counted module type, a module called twice, and uncounted functional work."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.LeakyReLU(0.1)
        self.grouped = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4, bias=False)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.prelu = nn.PReLU()
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.conv(x)))
        x = self.act(self.grouped(x))  # the same activation module, called a second time
        x = torch.sigmoid(x) * 2  # functional: not counted
        x = self.prelu(self.up(x))
        return self.fc(x.mean(dim=(2, 3)))


def _reference_count(model: _Toy, height: int, width: int) -> Complexity:
    """The organisers' rules restated independently, by walking _Toy's layers with known shapes."""
    flops = activations = num_conv = 0

    def conv(layer: nn.Conv2d | nn.ConvTranspose2d, out_h: int, out_w: int) -> None:
        nonlocal flops, activations, num_conv
        kh, kw = layer.kernel_size
        flops += kh * kw * layer.in_channels * (layer.out_channels // layer.groups) * out_h * out_w
        activations += layer.out_channels * out_h * out_w
        num_conv += 1

    conv(model.conv, height, width)
    flops += 2 * 8 * height * width  # affine BatchNorm2d: two per element
    flops += 8 * height * width  # LeakyReLU, first call
    half_h, half_w = (height + 1) // 2, (width + 1) // 2
    conv(model.grouped, half_h, half_w)
    flops += 8 * half_h * half_w  # LeakyReLU, second call
    conv(model.up, 2 * half_h, 2 * half_w)
    flops += 4 * (2 * half_h) * (2 * half_w)  # PReLU
    flops += 1 * 4 * 5  # Linear: batch * in * out
    params = sum(p.numel() for p in model.parameters())
    return Complexity(params, flops, activations, num_conv)


@pytest.mark.parametrize(("height", "width"), [(16, 16), (15, 22)])
def test_counting_rules_against_an_independent_walk(height, width):
    model = _Toy()
    assert count_complexity(model, (3, height, width)) == _reference_count(model, height, width)


def test_counter_leaves_the_model_untouched():
    model = IMDN(nb=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    count_complexity(model, (3, 8, 8))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model._forward_hooks and all(not m._forward_hooks for m in model.modules())


def test_input_size_parsing():
    assert parse_input_size("3x256x256") == (3, 256, 256)
    for bad in ("256x256", "3x0x4", "3xax4", ""):
        with pytest.raises(ValueError, match="3x256x256"):
            parse_input_size(bad)


def test_summary_command_prints_and_writes_json(tmp_path, capsys):
    from harness.commands import run

    out = tmp_path / "complexity.json"
    status = run(["summary", "imdn_baseline", "clb_imdn", "--input-size", "3x32x32", "--json", str(out)])
    assert status == 0
    records = json.loads(out.read_text())
    assert [r["submission"] for r in records] == ["imdn_baseline", "clb_imdn"]
    # IMDN is all stride-1 convolutions, so its counts scale with the area: 256x256 / 32x32 = 64.
    # Bundled submissions are counted by the default protocol's (ntire2022) counter; fvcore's figure
    # rides beside it (it omits the LeakyReLU MACs the organisers count, and counts every conv).
    fvcore = records[0].pop("flops_fvcore")
    assert records[0] == {
        "submission": "imdn_baseline",
        "status": "ok",
        "error": None,
        "params": 893_936,
        "flops": 58_531_512_320 // 64,
        "flops_counter": "ntire2022",
        "flops_ntire2022": 58_531_512_320 // 64,
        "flops_lower_bound": False,
        "activations": 154_140_672 // 64,
        "num_conv": 43,
        "fvcore_unsupported_ops": records[0]["fvcore_unsupported_ops"],
        "fvcore_uncounted_work": [],
        "counter_errors": {},
        "placement": None,  # IMDN makes no CUDA call
        "input_size": [3, 32, 32],
    }
    assert isinstance(fvcore, int) and 0 < fvcore < records[0]["flops"]
    assert "aten::leaky_relu" in "".join(records[0]["fvcore_unsupported_ops"])
    assert records[1]["params"] == 790_496 and records[1]["flops"] == 51_757_711_360 // 64
    printed = capsys.readouterr().out
    assert "imdn_baseline" in printed and "893,936" in printed


def test_summary_command_refuses_a_bad_input_size(capsys):
    from harness.commands import run

    assert run(["summary", "imdn_baseline", "--input-size", "256x256"]) == 2
    assert "--input-size" in capsys.readouterr().err


def test_summary_records_a_failing_model_and_counts_the_others(tmp_path, capsys):
    from harness.commands import run

    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "net.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        raise RuntimeError('constructor exploded')\n"
    )
    (folder / "submission.yaml").write_text(
        "name: broken\nteam: t\ndescription: d\nmodel:\n  file: net.py\n  class: Net\n"
        "input_range: 1.0\nscale: 4\n"
    )
    out = tmp_path / "complexity.json"
    status = run(["summary", str(folder), "imdn_baseline", "--input-size", "3x16x16", "--json", str(out)])
    assert status == 1
    broken, imdn = json.loads(out.read_text())
    assert broken["status"] == "failed" and "constructor exploded" in broken["error"]
    assert imdn["status"] == "ok" and imdn["params"] == 893_936
    assert "FAILED broken" in capsys.readouterr().out


def test_weight_norm_models_are_counted_in_place():
    # Team models built with weight_norm cannot be deep-copied; counting must not need a copy.
    model = nn.Sequential(nn.utils.weight_norm(nn.Conv2d(3, 8, 3, padding=1)), nn.ReLU())
    model.train()
    counted = count_complexity(model, (3, 8, 8))
    assert counted.num_conv == 1 and counted.activations == 8 * 8 * 8
    assert counted.flops == 9 * 3 * 8 * 64 + 8 * 64  # convolution MACs plus one per ReLU output
    assert model.training  # the mode it had is restored


# ---------------------------------------------------------------------------------------------
# fvcore, the NTIRE 2024+ counter: one FLOP per multiply-accumulate of the operators it has rules for.


class _ConvNet(nn.Module):
    """conv 3->8 (3x3) -> sigmoid -> conv 8->48 (1x1) -> pixel shuffle x4: every uncounted op is cheap."""

    def __init__(self, padding: int | str = 1) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 8, 3, padding=padding)
        self.last = nn.Conv2d(8, 48, 1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.last(torch.sigmoid(self.first(x))))


class _Doubling(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x * 2


class _CustomOpNet(_ConvNet):
    """The same network with a custom autograd function: fvcore sees prim::PythonOp._Doubling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.last(_Doubling.apply(self.first(x))))


def test_fvcore_counts_multiply_accumulates_of_convolutions() -> None:
    from harness.complexity import count_fvcore

    counted = count_fvcore(_ConvNet(), (3, 16, 16))
    # 16x16 outputs: 8 x 3 x 3 x 3 MACs each for the first conv, 48 x 8 for the 1x1 (biases not counted).
    assert counted.flops == 16 * 16 * (8 * 3 * 3 * 3 + 48 * 8)
    assert counted.unsupported_ops == {"aten::pixel_shuffle": 1, "aten::sigmoid": 1}
    assert counted.uncounted_work == [] and not counted.lower_bound


def test_fvcore_figure_is_a_lower_bound_when_a_custom_op_or_unknown_conv_is_skipped() -> None:
    from harness.complexity import count_fvcore

    custom = count_fvcore(_CustomOpNet(), (3, 16, 16))
    assert custom.uncounted_work == ["prim::PythonOp._Doubling"] and custom.lower_bound
    # padding="same" traces as aten::_convolution_mode, which fvcore has no rule for: 0 FLOPs.
    same = count_fvcore(_ConvNet(padding="same"), (3, 16, 16))
    assert same.flops == 16 * 16 * 48 * 8 and same.uncounted_work == ["aten::_convolution_mode"]


def test_complexity_record_names_the_official_counter_and_keeps_the_other() -> None:
    from harness.complexity import complexity_record

    model = _ConvNet()
    fvcore = complexity_record(model, "fvcore", (3, 16, 16))
    organisers = complexity_record(model, "ntire2022", (3, 16, 16))
    macs = 16 * 16 * (8 * 3 * 3 * 3 + 48 * 8)
    assert fvcore["flops"] == fvcore["flops_fvcore"] == macs and fvcore["flops_counter"] == "fvcore"
    # The organisers' 2022 counter has the same conv rule here (sigmoid is not one of its activations).
    assert organisers["flops"] == organisers["flops_ntire2022"] == macs
    assert organisers["flops_fvcore"] == macs and organisers["flops_counter"] == "ntire2022"
    assert fvcore["params"] == (8 * 27 + 8) + (48 * 8 + 48) and fvcore["num_conv"] == 2
    assert fvcore["flops_lower_bound"] is False and fvcore["counter_errors"] == {}
    custom = complexity_record(_CustomOpNet(), "fvcore", (3, 16, 16))
    assert custom["flops_lower_bound"] is True
    assert complexity_record(_CustomOpNet(), "ntire2022", (3, 16, 16))["flops_lower_bound"] is False
    with pytest.raises(ValueError, match="unknown FLOP counter 'thop'"):
        complexity_record(model, "thop")
