"""The ntire2022 zoo: ``ntire2022:<team>`` submissions built from a checkout of the official repository.

CI runs the whole path on a small fake repository written by these tests: two model files (one
importing a sibling module as team code does, one built by a factory function), weights saved in the
quirky ways the real zoo has them (nested under a key, ``module.`` prefixes, training checkpoints
saved from CUDA tensors), and a model importing a package that is not installed. The checks against
the real repository run only when ``ESR_NTIRE2022_ZOO`` points at a checkout; there the reference for
complexity is the organisers' own counter, imported from that checkout at test time.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from harness.catalog import resolve_many
from harness.complexity import count_complexity
from harness.errors import HarnessError
from harness.submissions import build_model, load_model
from harness.zoo import compare_published, default_registry, load_registry, resolve
from harness.zoo.published import as_printed

REPO = Path(__file__).resolve().parents[1]
INPUT = (3, 256, 256)
HW = 256 * 256

# ---------------------------------------------------------------------------------------------
# The fake repository.

FAKE_FILES = {
    "models/__init__.py": "",
    "models/fake_block.py": """
        import torch.nn as nn

        class Block(nn.Module):
            def __init__(self, nf):
                super().__init__()
                self.conv = nn.Conv2d(nf, nf, 3, padding=1)
                self.act = nn.ReLU(inplace=True)

            def forward(self, x):
                return x + self.act(self.conv(x))
        """,
    "models/team01_fake.py": """
        import torch.nn as nn
        from models.fake_block import Block

        class FakeNet(nn.Module):
            def __init__(self, nf=8, repeats=1):
                super().__init__()
                self.head = nn.Conv2d(3, nf, 3, padding=1)
                self.block = Block(nf)
                self.repeats = repeats
                self.tail = nn.Conv2d(nf, 48, 3, padding=1)
                self.up = nn.PixelShuffle(4)

            def forward(self, x):
                f = self.head(x)
                for _ in range(self.repeats):  # one module called several times
                    f = self.block(f)
                return self.up(self.tail(f))
        """,
    "models/team02_fake/__init__.py": "",
    "models/team02_fake/net.py": """
        import torch.nn as nn

        def make_model(nf):
            return DepthwiseNet(nf)

        class DepthwiseNet(nn.Module):
            def __init__(self, nf):
                super().__init__()
                self.head = nn.Conv2d(3, nf, 1)
                self.dw = nn.Conv2d(nf, nf, 3, padding=1, groups=nf)
                self.act = nn.LeakyReLU(0.05)
                self.tail = nn.Conv2d(nf, 48, 1)
                self.up = nn.PixelShuffle(4)

            def forward(self, x):
                return self.up(self.tail(self.act(self.dw(self.head(x)))))
        """,
    "models/team03_needs_dep.py": """
        import some_missing_pkg
        import torch.nn as nn

        class NeedsDep(nn.Module):
            pass
        """,
}


def fake_net_complexity(nf: int, repeats: int) -> dict[str, int]:
    """FakeNet counted by hand, with the organisers' conventions: MACs without bias, ReLU adds one
    per output element, activations are Conv2d output elements, every call of a conv counts."""
    return {
        "params": (3 * 9 * nf + nf) + (nf * nf * 9 + nf) + (nf * 9 * 48 + 48),
        "flops": HW * 9 * 3 * nf + repeats * (HW * 9 * nf * nf + HW * nf) + HW * 9 * nf * 48,
        "activations": HW * nf + repeats * HW * nf + HW * 48,
        "num_conv": 2 + repeats,
    }


def depthwise_net_complexity(nf: int) -> dict[str, int]:
    """DepthwiseNet by hand: the grouped conv costs in_channels * (out_channels / groups) * 9 MACs."""
    return {
        "params": (3 * nf + nf) + (nf * 9 + nf) + (nf * 48 + 48),
        "flops": HW * 3 * nf + HW * nf * 9 + HW * nf + HW * nf * 48,
        "activations": HW * (2 * nf + 48),
        "num_conv": 3,
    }


def _save_as_if_on_cuda(obj: object, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Save with CUDA storage locations, as checkpoints written on a GPU are: loading them on a
    machine without CUDA needs ``map_location``."""
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(obj, path)


def _state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


class FakeZoo:
    """A fake checkout, its registry file and the reference models whose weights it holds."""

    def __init__(self, root: Path, registry_path: Path, references: dict[int, nn.Module]) -> None:
        self.root = root
        self.registry_path = registry_path
        self.registry = load_registry(registry_path)
        self.references = references


def _published(counted: dict[str, int]) -> dict[str, float]:
    return {
        "params_m": as_printed("params", counted["params"]),
        "flops_g": as_printed("flops", counted["flops"]),
        "acts_m": as_printed("activations", counted["activations"]),
        "num_conv": counted["num_conv"],
    }


@pytest.fixture(scope="module")
def fake_zoo(tmp_path_factory: pytest.TempPathFactory) -> FakeZoo:
    root = tmp_path_factory.mktemp("fake_ntire2022")
    for name, text in FAKE_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    (root / "model_zoo").mkdir()

    # Reference models with random weights; each is saved in one of the real zoo's quirky formats.
    sys.path.insert(0, str(root))
    try:
        from models.team01_fake import FakeNet
        from models.team02_fake.net import make_model
    finally:
        sys.path.remove(str(root))
        _forget_package("models")
    torch.manual_seed(0)
    one, two, three = FakeNet(nf=8), make_model(6), FakeNet(nf=4, repeats=2)
    monkeypatch = pytest.MonkeyPatch()
    torch.save({"params": _state_dict(one)}, root / "model_zoo/team01_fake.pth")
    _save_as_if_on_cuda(
        {f"module.{k}": v for k, v in _state_dict(two).items()},
        root / "model_zoo/team02_fake.pt",
        monkeypatch,
    )
    _save_as_if_on_cuda(
        {"epoch": 7, "model_state_dict": _state_dict(three), "optimizer_state_dict": {"lr": 0.1}},
        root / "model_zoo/team03_fake.pth",
        monkeypatch,
    )
    torch.save({}, root / "model_zoo/team04_needs_dep.pth")

    from harness.submissions import sha256_file

    def entry(mid, team, module, cls, kwargs, weights, counted, **extra):
        return {
            "official_model_id": mid,
            "team": team,
            "model_name": cls,
            "module": module,
            "class": cls,
            "kwargs": kwargs,
            "weights": weights,
            "sha256": sha256_file(root / weights),
            "input_range": 1,
            "published": _published(counted),
            "official_counter": counted,
            **extra,
        }

    two_printed_wrong = entry(
        2, "fake_two", "models.team02_fake.net", "make_model", {"nf": 6}, "model_zoo/team02_fake.pt",
        depthwise_net_complexity(6), strip_prefix="module.", input_range=255,
    )  # fmt: skip
    two_printed_wrong["published"] = {**two_printed_wrong["published"], "num_conv": 4, "flops_g": 9.99}
    registry = {
        "repository": "https://example.org/fake/NTIRE2022_ESR",
        "commit": "0" * 40,
        "groups": {"table2": [3, 1]},
        "models": [
            entry(
                1, "Fake Team One", "models.team01_fake", "FakeNet", {"nf": 8}, "model_zoo/team01_fake.pth",
                fake_net_complexity(8, 1), state_dict_key="params",
            ),
            two_printed_wrong,
            entry(
                3, "Fake-Three", "models.team01_fake", "FakeNet", {"nf": 4, "repeats": 2},
                "model_zoo/team03_fake.pth", fake_net_complexity(4, 2), state_dict_key="model_state_dict",
                tile=64,
            ),
            entry(
                4, "NeedsDep", "models.team03_needs_dep", "NeedsDep", {}, "model_zoo/team04_needs_dep.pth",
                fake_net_complexity(1, 1), extra_requires=["some_missing_pkg"],
            ),
        ],
    }  # fmt: skip
    registry_path = root.parent / "fake_registry.yaml"
    registry_path.write_text(yaml.safe_dump(registry, sort_keys=False))
    return FakeZoo(root, registry_path, {1: one, 2: two, 3: three})


def _forget_package(package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]


@pytest.fixture
def clean_imports():
    """Team code is imported as the top-level package ``models``: forget it and the checkout's
    ``sys.path`` entry after each test, so that tests with different checkouts never mix."""
    path_before = list(sys.path)
    yield
    sys.path[:] = path_before
    _forget_package("models")


# ---------------------------------------------------------------------------------------------
# Resolving names.


def test_team_id_and_group_names_resolve_to_submissions(fake_zoo: FakeZoo) -> None:
    reg = fake_zoo.registry
    [one] = resolve("ntire2022:Fake Team One", fake_zoo.root, registry=reg)
    assert one.name == "ntire2022:Fake_Team_One"
    assert (one.team, one.official_model_id) == ("Fake Team One", 1)
    assert one.model.module == "models.team01_fake" and one.model.class_name == "FakeNet"
    assert one.model.root == fake_zoo.root.resolve()
    assert dict(one.model.kwargs) == {"nf": 8}
    assert one.weights.file == str(fake_zoo.root.resolve() / "model_zoo/team01_fake.pth")
    assert one.weights.state_dict_key == "params" and one.weights.strip_prefix is None
    assert (one.input_range, one.scale, one.tile) == (1.0, 4, None)

    # The same entry by submission name (any case) and by official id.
    assert resolve("ntire2022:fake_team_one", fake_zoo.root, registry=reg) == [one]
    [two] = resolve("ntire2022:2", fake_zoo.root, registry=reg)
    assert (two.team, two.input_range, two.weights.strip_prefix) == ("fake_two", 255.0, "module.")

    every = resolve("ntire2022:all", fake_zoo.root, registry=reg)
    assert [s.official_model_id for s in every] == [1, 2, 3, 4]
    assert [s.extra_requires for s in every] == [(), (), (), ("some_missing_pkg",)]
    group = resolve("ntire2022:table2", fake_zoo.root, registry=reg)
    assert [(s.official_model_id, s.tile, s.tile_overlap) for s in group] == [(3, 64, 32), (1, None, 32)]


def test_unknown_team_or_id_suggests_close_names(fake_zoo: FakeZoo) -> None:
    with pytest.raises(HarnessError, match=r"did you mean 'Fake Team One'") as error:
        resolve("ntire2022:Fake Team Onne", fake_zoo.root, registry=fake_zoo.registry)
    assert "\n" not in str(error.value)
    with pytest.raises(HarnessError, match=r"no released model has official id 7 \(released: 1, 2, 3, 4\)"):
        resolve("ntire2022:7", fake_zoo.root, registry=fake_zoo.registry)
    with pytest.raises(HarnessError, match="name a team"):
        resolve("ntire2022:", fake_zoo.root, registry=fake_zoo.registry)


def test_missing_or_wrong_zoo_path_is_one_clear_line(fake_zoo: FakeZoo, tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"pass --zoo PATH or set ESR_NTIRE2022_ZOO"):
        resolve("ntire2022:all", None, registry=fake_zoo.registry)
    with pytest.raises(HarnessError, match=r"no such folder"):
        resolve("ntire2022:all", tmp_path / "absent", registry=fake_zoo.registry)
    with pytest.raises(HarnessError, match=r"not a checkout of .*no models/ and model_zoo/"):
        resolve("ntire2022:all", tmp_path, registry=fake_zoo.registry)
    # Through the command layer's entry point, with the shipped registry.
    with pytest.raises(HarnessError, match=r"--zoo"):
        resolve_many(["imdn_baseline", "ntire2022:ByteESR"], zoo=None)


# ---------------------------------------------------------------------------------------------
# Building and loading through the harness.


@pytest.mark.usefixtures("clean_imports")
def test_every_weights_quirk_loads_strictly_and_reproduces_the_saved_model(fake_zoo: FakeZoo) -> None:
    if not torch.cuda.is_available():  # the fixture really wrote CUDA locations
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(fake_zoo.root / "model_zoo/team02_fake.pt", weights_only=True)
    x = torch.rand(1, 3, 12, 10)
    for spec, mid in [("ntire2022:1", 1), ("ntire2022:fake_two", 2), ("ntire2022:Fake-Three", 3)]:
        [submission] = resolve(spec, fake_zoo.root, registry=fake_zoo.registry)
        loaded = load_model(submission)
        assert loaded.weights_sha256 == fake_zoo.registry.by_id(mid).sha256
        assert type(loaded.model).__module__.startswith("models.team0")
        with torch.no_grad():
            expected = fake_zoo.references[mid].eval()(x)
            assert torch.equal(loaded.model(x), expected)
        assert expected.shape == (1, 3, 48, 40)


@pytest.mark.usefixtures("clean_imports")
def test_altered_weights_file_is_refused(fake_zoo: FakeZoo, tmp_path: Path) -> None:
    altered_root = tmp_path / "zoo"
    (altered_root / "model_zoo").mkdir(parents=True)
    (altered_root / "models").symlink_to(fake_zoo.root / "models")
    original = (fake_zoo.root / "model_zoo/team01_fake.pth").read_bytes()
    (altered_root / "model_zoo/team01_fake.pth").write_bytes(original + b"\0")
    [submission] = resolve("ntire2022:1", altered_root, registry=fake_zoo.registry)
    with pytest.raises(HarnessError, match="sha256"):
        load_model(
            submission, model_zoo=tmp_path / "none", cache_dir=tmp_path / "cache", allow_download=False
        )


@pytest.mark.usefixtures("clean_imports")
def test_missing_optional_dependency_fails_only_that_model_with_an_install_line(fake_zoo: FakeZoo) -> None:
    built, failures = {}, {}
    for submission in resolve("ntire2022:all", fake_zoo.root, registry=fake_zoo.registry):
        try:
            built[submission.official_model_id] = build_model(submission)
        except HarnessError as error:
            failures[submission.official_model_id] = str(error)
    assert sorted(built) == [1, 2, 3]
    assert list(failures) == [4]
    assert "\n" not in failures[4]
    assert "pip install some_missing_pkg" in failures[4]
    assert "ntire2022:NeedsDep" in failures[4]


@pytest.mark.usefixtures("clean_imports")
def test_complexity_through_count_complexity_matches_hand_counts(fake_zoo: FakeZoo) -> None:
    for submission in resolve("ntire2022:all", fake_zoo.root, registry=fake_zoo.registry)[:3]:
        entry = fake_zoo.registry.by_id(submission.official_model_id)
        counted = count_complexity(build_model(submission), input_size=INPUT)
        found = {k: int(getattr(counted, k)) for k in ("params", "flops", "activations", "num_conv")}
        assert found == vars(entry.official_counter), entry.team


# ---------------------------------------------------------------------------------------------
# The registry file itself.


def test_published_disagreements_are_listed_exactly(fake_zoo: FakeZoo) -> None:
    found = [(d.official_model_id, d.metric, d.published, d.counted_as_printed) for d in compare_published(
        fake_zoo.registry
    )]  # fmt: skip
    flops_two = depthwise_net_complexity(6)["flops"]
    assert found == [(2, "flops", 9.99, round(flops_two / 1e9, 2)), (2, "num_conv", 4.0, 3.0)]
    text = compare_published(fake_zoo.registry)[1].describe()
    assert text == "fake_two (official model 2): num_conv printed 4, the organisers' counter gives 3 (3)"


def test_registry_errors_name_the_file_and_field(fake_zoo: FakeZoo, tmp_path: Path) -> None:
    data = yaml.safe_load(fake_zoo.registry_path.read_text())
    data["models"][1]["clas"] = "x"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(
        HarnessError, match=r"bad\.yaml: models\[1\]\.clas: unknown key \(did you mean 'class'\?\)"
    ):
        load_registry(bad)
    data = yaml.safe_load(fake_zoo.registry_path.read_text())
    data["models"][2]["team"] = "FAKE TEAM ONE"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(
        HarnessError, match=r"bad\.yaml: models: 'fake team one' names both official model 1 and 3"
    ):
        load_registry(bad)
    data = yaml.safe_load(fake_zoo.registry_path.read_text())
    data["groups"]["table2"] = [1, 9]
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(HarnessError, match=r"groups\.table2: must be a list of official model ids"):
        load_registry(bad)
    data = yaml.safe_load(fake_zoo.registry_path.read_text())
    data["models"][0]["official_model_id"] = "one"
    del data["models"][1]["published"]["flops_g"]
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(
        HarnessError, match=r"bad\.yaml: models\[0\]\.official_model_id: must be int, got str 'one'"
    ):
        load_registry(bad)
    data["models"][0]["official_model_id"] = yaml.safe_load(fake_zoo.registry_path.read_text())["models"][0][
        "official_model_id"
    ]
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(HarnessError, match=r"bad\.yaml: models\[1\]\.published\.flops_g: missing"):
        load_registry(bad)


def _published_csv(name: str) -> list[dict[str, str]]:
    path = REPO / "results" / "published" / name
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout")
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_shipped_registry_matches_the_official_table() -> None:
    """Team names, ids and printed complexity of every entry equal the official results table."""
    rows = {int(r["official_model_id"]): r for r in _published_csv("ntire2022_esr_official_results.csv")}
    registry = default_registry()
    assert len(registry.entries) == 42
    for entry in registry.entries:
        row = rows[entry.official_model_id]
        assert entry.team == row["team"]
        printed = (float(row["params_m"]), float(row["flops_g"]), float(row["acts_m"]), int(row["num_conv"]))
        assert vars(entry.published) == dict(
            zip(("params_m", "flops_g", "acts_m", "num_conv"), printed, strict=True)
        )
    # Teams of the official table whose model the repository does not release.
    assert sorted(set(rows) - {e.official_model_id for e in registry.entries}) == [7, 21, 32]


def test_table2_group_is_the_released_teams_of_the_seed_table2() -> None:
    seed = [r["official_team_name"] for r in _published_csv("seed_table2.csv") if r["official_team_name"]]
    registry = default_registry()
    assert [e.team for e in registry.lookup("table2")] == seed


# ---------------------------------------------------------------------------------------------
# Against the real official repository ($ESR_NTIRE2022_ZOO).


@pytest.fixture(scope="module")
def official_zoo() -> Path:
    value = os.environ.get("ESR_NTIRE2022_ZOO")
    if not value or not Path(value).is_dir():
        pytest.skip("ESR_NTIRE2022_ZOO is not set to a checkout of the official NTIRE2022_ESR repository")
    return Path(value).resolve()


@pytest.fixture(scope="module")
def official_counter(official_zoo: Path):
    """The organisers' ``utils/model_summary.py``, imported from the checkout under a private name."""
    path = official_zoo / "utils" / "model_summary.py"
    spec = importlib.util.spec_from_file_location("ntire2022_official_model_summary", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REAL_IDS = [entry.official_model_id for entry in default_registry().entries]


def _real_submission(zoo: Path, mid: int):
    [submission] = resolve(f"ntire2022:{mid}", zoo)
    if submission.needs_cuda and not torch.cuda.is_available():
        pytest.skip(f"{submission.name} needs CUDA")
    missing = [m for m in submission.extra_requires if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{submission.name} needs {', '.join(missing)} (pip install 'esr-harness[zoo]')")
    return submission


@pytest.mark.slow
@pytest.mark.usefixtures("clean_imports")
@pytest.mark.parametrize("mid", REAL_IDS)
def test_real_model_loads_strictly_and_upscales(official_zoo: Path, mid: int) -> None:
    submission = _real_submission(official_zoo, mid)
    if submission.weights.file is None:  # known by git blob id only, and absent or different here
        pytest.skip(submission.weights.instructions)
    loaded = load_model(submission)  # sha256 verified, strict load, on CPU
    assert loaded.weights_sha256 == submission.weights.sha256
    with torch.no_grad():
        out = loaded.model(torch.rand(1, 3, 20, 24) * submission.input_range)
    assert out.shape == (1, 3, 80, 96)


@pytest.mark.slow
@pytest.mark.usefixtures("clean_imports")
@pytest.mark.parametrize("mid", REAL_IDS)
def test_real_model_complexity_equals_the_organisers_counter(official_zoo: Path, official_counter, mid: int):
    submission = _real_submission(official_zoo, mid)
    entry = default_registry().by_id(mid)
    # A fresh model for each count: the official counter leaves attributes behind, and models with
    # weight_norm cannot be deep-copied.
    model = build_model(submission)
    with torch.no_grad():
        acts, num_conv = official_counter.get_model_activation(build_model(submission), INPUT)
        flops = official_counter.get_model_flops(build_model(submission), INPUT, False)
        official = {
            "params": sum(p.numel() for p in model.parameters()),
            "flops": int(flops),
            "activations": int(acts),
            "num_conv": int(num_conv),
        }
        ours = count_complexity(model, input_size=INPUT)
    assert official == vars(entry.official_counter), "the registry's official_counter is stale"
    assert {k: int(getattr(ours, k)) for k in official} == official
