"""DistributedDataParallel training with two CPU processes (gloo): the replicas must never drift apart."""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from harness.training.config import config_from_dict
from harness.training.data import TrainImage
from harness.training.distributed import DistContext
from harness.training.loop import Prepared, train
from harness.training.model import build_training_model

pytestmark = pytest.mark.slow

STEPS = 3


def _images(count: int, size: int, seed: int) -> list[TrainImage]:
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        hr = rng.integers(0, 256, size=(size * 4, size * 4, 3), dtype=np.uint8)
        images.append(TrainImage(f"img{i}", hr[::4, ::4].copy(), hr))
    return images


def _rank_main(rank: int, port: int, out_dir: str) -> None:
    """One DDP process: train a few steps from the same initial weights, save what it ended with."""
    torch.set_num_threads(1)
    config = config_from_dict(
        {
            "name": "ddp",
            "output_dir": f"{out_dir}/run",
            "seed": 5,
            "device": "cpu",
            "log_every": 1,
            "data": {"patch_size": 8, "batch_size": 1, "workers": 0},
            "model": {"expansion": 2, "expanded": "body", "init_weights": "unused.pth"},
            "optim": {"iterations": STEPS, "lr": 1e-3},
            "val": {"every": STEPS},
        }
    )
    ctx = DistContext(rank=rank, world_size=2, init_method=f"tcp://127.0.0.1:{port}")
    torch.manual_seed(config.seed)  # as prepare() does: every rank builds the same initial model
    model = build_training_model(config.model)
    prepared = Prepared(
        config=config,
        source="ddp test",
        ctx=ctx,
        device=torch.device("cpu"),
        output_dir=Path(config.output_dir),
        images=_images(4, 12, seed=0),
        val_images=[(img.name, img.lr, img.hr) for img in _images(1, 8, seed=1)] if rank == 0 else [],
        model=model,
        resume_state=None,
    )
    result = train(prepared, show_progress=False)
    torch.save({"state": result.model.state_dict(), "losses": result.losses}, f"{out_dir}/rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_keep_identical_parameters(tmp_path: Path) -> None:
    torch.manual_seed(5)
    from harness.training.config import ModelConfig

    initial = build_training_model(ModelConfig(expansion=2, expanded="body")).state_dict()
    mp.spawn(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["state"].keys() == rank1["state"].keys()
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), key
    changed = [key for key, value in rank0["state"].items() if not torch.equal(value, initial[key])]
    assert changed, "training did not change any parameter"
    # Each rank trained on its own patches, so their losses differ while the weights agree.
    assert len(rank0["losses"]) == len(rank1["losses"]) == STEPS
    assert rank0["losses"] != rank1["losses"]
    assert (tmp_path / "run" / "last.pth").is_file() and (tmp_path / "run" / "log.csv").is_file()


def test_esr_train_nproc_2_relaunches_under_torchrun(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The user's path: `esr train --nproc 2` re-executes itself under torchrun (gloo on the CPU),
    with every option, --set included, reaching both workers; rank 0 alone writes the run."""
    import yaml

    from harness.cli import main
    from harness.models.imdn import IMDN
    from harness.training.checkpoint import load_checkpoint

    init = tmp_path / "pruned.pth"
    torch.save(IMDN(nb=7).state_dict(), init)
    config = {
        "name": "torchrun",
        "output_dir": str(tmp_path / "run"),
        "device": "cpu",
        "log_every": 1,
        "data": {"train": "samples", "patch_size": 8, "batch_size": 1, "workers": 0,
                 "cache_dir": str(tmp_path / "cache")},
        "model": {"expansion": 2, "expanded": "body", "init_weights": str(init)},
        "optim": {"iterations": 50},
        "val": {"dataset": "samples", "every": 50, "max_images": 1},
    }  # fmt: skip
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = ["train", "--config", str(path), "--nproc", "2", "--no-progress", "--set", "optim.iterations=2"]
    assert main(argv) == 0
    checkpoint = load_checkpoint(tmp_path / "run" / "last.pth")
    assert checkpoint["iteration"] == 2  # --set reached the workers: 2 iterations, not the file's 50
    with open(tmp_path / "run" / "log.csv", newline="") as handle:
        logged = [(row["kind"], int(row["iteration"])) for row in csv.DictReader(handle)]
    assert logged == [("step", 1), ("step", 2), ("val", 2)]  # one log (rank 0's), not one per process
