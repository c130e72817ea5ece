"""The Ray executor: the same numbers as a local run, and a lost worker retried once.

A local Ray instance starts and stops with each command, as `esr evaluate --executor ray` does
without --ray-address.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from slow_submission import write_paired_dataset, write_slow_submission

from harness.commands import run as esr
from harness.leaderboard import load_run
from tests.test_faults import _options as _faults_options
from tests.test_faults import _submission, _tiny_data
from tests.test_sandbox import Listener, _attack, needs_bwrap

pytest.importorskip("ray", reason="Ray is not installed (pip install 'esr-harness[ray]')")


def _options(tmp_path: Path, zoo: Path, out: str) -> list[str]:
    return [
        "--device",
        "cpu",
        "--quiet",
        "--rounds",
        "2",
        "--warmup-seconds",
        "0",
        "--seed",
        "5",
        "--model-zoo",
        str(zoo),
        "--cache-dir",
        str(tmp_path / f"{out}-cache"),
        "--out",
        str(tmp_path / out),
    ]


def _scores(document: dict) -> dict[str, list[list[float]]]:
    keys = ("name", "psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")
    return {
        r["submission"]: [[image[k] for k in keys] for image in r["per_image"]] for r in document["results"]
    }


@pytest.mark.slow
def test_ray_gives_the_numbers_of_a_local_run(tmp_path: Path, data_dir: Path, model_zoo_dir: Path) -> None:
    names = ["clb_imdn", "rfdn_baseline", "bicubic"]
    data = ["--data", str(data_dir / "Set5")]
    assert esr(["evaluate", *names, *data, *_options(tmp_path, model_zoo_dir, "local")]) == 0
    ray_args = ["--executor", "ray", "--ray-workers", "2"]
    status = esr(["evaluate", *names, *data, *_options(tmp_path, model_zoo_dir, "ray"), *ray_args])
    assert status == 0
    local = json.loads((tmp_path / "local" / "results.json").read_text())
    remote = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert [r["submission"] for r in remote["results"]] == [*names, "imdn_baseline"]  # none missing or twice
    assert _scores(remote) == _scores(local)
    assert all(r["status"] == "ok" for r in remote["results"])
    assert len(remote["lanes"]) == 2 and all(lane["label"].startswith("ray lane") for lane in remote["lanes"])
    assert remote["sandbox"] == local["sandbox"]  # --sandbox auto decides for Ray lanes as for local ones
    for record in remote["results"]:
        assert record["pairing"]["lane"] == record["timed_on"]["lane"]
        assert record["integrity"]["sandbox"] == local["sandbox"]
        checks = {check["name"]: check["verdict"] for check in record["integrity"]["checks"]}
        assert checks.get("idle_work") == "pass", checks  # the actor reads its worker's CPU time
        assert checks.get("timed_outputs") == "pass", checks  # the actor copies its worker's output slot
    run = load_run(tmp_path / "ray")  # a valid run document for the leaderboard
    assert {r["submission"] for r in run.results} == {*names, "imdn_baseline"}


def _parent(pid: int) -> int | None:
    """The parent of process ``pid`` (from /proc/<pid>/stat), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])  # the fields after the command's closing bracket


def _descends_from_this_test(pid: int) -> bool:
    """Whether ``pid`` was started, through any chain of parents, by this test's process."""
    me = os.getpid()
    while pid not in (0, 1):
        parent = _parent(pid)
        if parent is None:
            return False
        if parent == me:
            return True
        pid = parent
    return False


def _busy_worker_pids() -> list[int]:
    """Processes of this test's Ray worker actors answering a request (title ray::_RayWorker.handle).

    Only this test's own: Ray workers of other runs on the machine are never touched.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("ray::_RayWorker.handle") and _descends_from_this_test(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_lost_ray_worker_is_retried_and_the_record_says_so(tmp_path: Path, model_zoo_dir: Path) -> None:
    data = write_paired_dataset(tmp_path / "data", count=4, lr_size=(16, 16))
    folder = write_slow_submission(tmp_path / "slow", sleep_s=0.25)
    killed: list[int] = []

    def kill_one_busy_worker() -> None:
        deadline = time.monotonic() + 300
        while not killed and time.monotonic() < deadline:
            pids = _busy_worker_pids()
            if pids:
                time.sleep(0.3)  # well inside its request
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_busy_worker, daemon=True)
    killer.start()
    argv = ["evaluate", str(folder), "--data", str(data), "--executor", "ray"]
    status = esr(argv + _options(tmp_path, model_zoo_dir, "out"))
    killer.join(timeout=5)
    assert killed, "no Ray worker was seen answering a request"
    assert status == 0
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert all(r["status"] == "ok" and r["num_images"] == 4 for r in document["results"])
    retried = [r for r in document["results"] if r["retries"]]
    assert len(retried) == 1, [r["retries"] for r in document["results"]]
    (retry,) = retried[0]["retries"]
    assert f"(pid {killed[0]} on " in retry and "Ray restarted it" in retry


# ---------------------------------------------------------------- the sandbox, as in local runs


def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline")).read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _sandboxed_workers() -> dict[int, int | None]:
    """This test's sandboxed worker processes (``python -m harness.runner.worker_main``), each with
    the pid of the Ray actor it descends from (None: no actor among its ancestors)."""
    found: dict[int, int | None] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or "harness.runner.worker_main" not in _cmdline(int(entry.name)):
            continue
        pid = int(entry.name)
        if not _descends_from_this_test(pid):
            continue
        actor, ancestor = None, _parent(pid)
        while ancestor not in (None, 0, 1) and actor is None:
            if _cmdline(ancestor).startswith("ray::_RayWorker"):
                actor = ancestor
            ancestor = _parent(ancestor)
        found[pid] = actor
    return found


def _watch(seen: dict[int, int | None], done: threading.Event) -> None:
    """Collect the sandboxed workers that run until ``done`` (each lives for seconds at least)."""
    while not done.is_set():
        seen.update(_sandboxed_workers())
        time.sleep(0.05)


def _attacks_on_ray(root: Path, target: Path, mode: str, zoo: Path) -> tuple:
    """The network and file attacks through the Ray executor with ``--sandbox mode``: the document,
    the connections made, the file they write, and the sandboxed workers seen running."""
    listener = Listener()
    seen: dict[int, int | None] = {}
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(seen, done), daemon=True)
    watcher.start()
    folders = [
        _attack(root, "net_per_forward", host="127.0.0.1", port=listener.port),
        _attack(root, "write_outside", target=str(target)),
    ]
    argv = ["evaluate", *map(str, folders), "--data", str(_tiny_data(root / "data"))]
    argv += ["--executor", "ray", "--sandbox", mode, *_faults_options(root, zoo)]
    try:
        status = esr(argv)
    finally:
        done.set()
        watcher.join()
        listener.close()
    assert status == 0
    document = json.loads((root / "out" / "results.json").read_text())
    return document, listener.connections, target, seen


@pytest.fixture(scope="module")
def attacks_on_ray(tmp_path_factory: pytest.TempPathFactory, model_zoo_dir: Path) -> dict[str, tuple]:
    """The attacks through Ray unsandboxed (the control) and sandboxed."""
    return {
        mode: _attacks_on_ray(
            tmp_path_factory.mktemp(f"ray-{mode}"),
            tmp_path_factory.mktemp(f"ray-outside-{mode}") / "escaped.txt",
            mode,
            model_zoo_dir,
        )
        for mode in ("off", "required")
    }


@pytest.mark.slow
@needs_bwrap
def test_unsandboxed_on_ray_the_attacks_reach_out(attacks_on_ray) -> None:
    """The control: the attacks do run through Ray (so the sandboxed test means something)."""
    document, connections, target, seen = attacks_on_ray["off"]
    assert document["sandbox"] == {"enabled": False, "reason": "--sandbox off"}
    assert connections > 0 and target.is_file()
    assert seen == {}


@pytest.mark.slow
@needs_bwrap
def test_ray_workers_run_sandboxed_as_children_of_their_actors(attacks_on_ray) -> None:
    document, connections, target, seen = attacks_on_ray["required"]
    assert document["sandbox"]["enabled"] is True and document["sandbox"]["bwrap"]
    assert connections == 0 and not target.exists()
    records = {record["submission"]: record for record in document["results"]}
    assert set(records) == {"attack_net_per_forward", "attack_write_outside", "imdn_baseline"}
    for record in records.values():
        assert record["status"] == "ok", record["error"]
        assert record["integrity"]["sandbox"] == document["sandbox"]
    # Every sandboxed worker ran under an actor, in a process other than the actor's.
    assert seen and all(actor is not None and actor != worker for worker, actor in seen.items()), seen


@pytest.mark.slow
def test_a_worker_that_exits_is_reported_as_in_a_local_run(tmp_path: Path, model_zoo_dir: Path) -> None:
    """The worker, the actor's child, dies; the actor lives on, so Ray restarts nothing and the
    record has the local executor's reason (tests/test_faults.py)."""
    folder = _submission(tmp_path, "sys_exit", "exit")
    argv = ["evaluate", str(folder), "--data", str(_tiny_data(tmp_path / "data")), "--executor", "ray"]
    assert esr([*argv, *_faults_options(tmp_path, model_zoo_dir)]) == 1
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    records = {record["submission"]: record for record in document["results"]}
    assert records["sys_exit"]["status"] == "failed" and records["sys_exit"]["retries"] == []
    reason = "worker exited with code 3 during the accuracy pass; its last output: out of patience"
    assert reason in records["sys_exit"]["error"], records["sys_exit"]["error"]
    assert records["imdn_baseline"]["status"] == "ok"
