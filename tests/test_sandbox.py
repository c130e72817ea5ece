"""Workers under bubblewrap: an attack on the network or the file system gains nothing, honest
submissions score as before, and a host without user namespaces is said so (or refused).

The attacks are the submissions of ``tests/attacks/``, copied here with the listener's port and
the file's path written into their manifests. Each evaluation is run twice on the same tiny data,
once with ``--sandbox off`` (where the attacks must reach the listener and write the file, or the
test would prove nothing) and once with ``--sandbox required``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
import yaml

from harness.commands import run as esr
from harness.runner import sandbox
from tests.test_faults import _options, _submission, _tiny_data

ATTACKS = Path(__file__).parent / "attacks"

needs_bwrap = pytest.mark.skipif(
    sandbox.find_bwrap() is None or sandbox.probe(sandbox.find_bwrap() or "") is not None,
    reason="bwrap cannot start a sandbox on this host (docs/integrity.md)",
)


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


def _attack(root: Path, name: str, **kwargs: object) -> Path:
    """A copy of ``tests/attacks/<name>`` whose model kwargs are set to ``kwargs``."""
    folder = root / name
    shutil.copytree(ATTACKS / name, folder)
    manifest = yaml.safe_load((folder / "submission.yaml").read_text())
    manifest["model"]["kwargs"] = kwargs
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def _evaluate(root: Path, mode: str, listener: Listener, target: Path) -> tuple[int, dict]:
    zoo = os.environ.get("ESR_MODEL_ZOO")
    if not zoo or not Path(zoo).is_dir():
        pytest.skip("ESR_MODEL_ZOO is not set to a folder (export ESR_MODEL_ZOO=../shared/model_zoo)")
    data = _tiny_data(root / "data")
    folders = [
        _attack(root, "net_per_forward", host="127.0.0.1", port=listener.port),
        _attack(root, "write_outside", target=str(target)),
    ]
    argv = ["evaluate", *map(str, folders), "clb_imdn", "--data", str(data), "--sandbox", mode]
    status = esr([*argv, *_options(root, Path(zoo), "--timeout", "300")])
    return status, json.loads((root / "out" / "results.json").read_text())


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, dict, int, Path]]:
    """The same evaluation unsandboxed and sandboxed: status, document, connections, written file."""
    runs = {}
    for mode in ("off", "required"):
        root = tmp_path_factory.mktemp(f"sandbox-{mode}")
        target = tmp_path_factory.mktemp(f"outside-{mode}") / "escaped.txt"
        listener = Listener()
        try:
            status, document = _evaluate(root, mode, listener, target)
        finally:
            listener.close()
        runs[mode] = (status, document, listener.connections, target)
    return runs


@needs_bwrap
def test_unsandboxed_the_attacks_reach_out(both_runs) -> None:
    """The control: without the sandbox both attacks work (so the sandboxed test means something)."""
    _, document, connections, target = both_runs["off"]
    assert document["sandbox"] == {"enabled": False, "reason": "--sandbox off"}
    assert connections > 0
    assert target.is_file()


@needs_bwrap
def test_sandboxed_no_connection_leaves_and_no_file_is_written(both_runs) -> None:
    status, document, connections, target = both_runs["required"]
    assert document["sandbox"]["enabled"] is True and document["sandbox"]["bwrap"]
    assert connections == 0
    assert not target.exists()
    records = {record["submission"]: record for record in document["results"]}
    assert {"attack_net_per_forward", "attack_write_outside", "clb_imdn", "imdn_baseline"} <= set(records)


@needs_bwrap
def test_honest_submissions_score_exactly_as_unsandboxed(both_runs) -> None:
    plain = {record["submission"]: record for record in both_runs["off"][1]["results"]}
    boxed = {record["submission"]: record for record in both_runs["required"][1]["results"]}
    for name in ("clb_imdn", "imdn_baseline"):
        assert boxed[name]["status"] == "ok", boxed[name]["error"]
        for key in ("psnr_rgb", "psnr_y", "ssim_y"):
            assert boxed[name][key] == plain[name][key]
        assert boxed[name]["params"] == plain[name]["params"]


# ---------------------------------------------------------------- a host without user namespaces

# What bwrap says on Ubuntu 24.04 with kernel.apparmor_restrict_unprivileged_userns=1.
REFUSING_BWRAP = "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"


@pytest.fixture
def no_user_namespaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``bwrap`` as it behaves where the host forbids unprivileged user namespaces."""
    fake = tmp_path / "bwrap"
    fake.write_text(REFUSING_BWRAP)
    fake.chmod(0o755)
    monkeypatch.setenv("ESR_BWRAP", str(fake))
    return fake


def test_auto_warns_once_and_records_why(no_user_namespaces: Path, tmp_path: Path, capsys) -> None:
    zoo = Path(os.environ.get("ESR_MODEL_ZOO") or tmp_path)
    data = _tiny_data(tmp_path / "data")
    good = _submission(tmp_path, "good")
    status = esr(["evaluate", str(good), "--data", str(data), *_options(tmp_path, zoo)])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "Permission denied" in warnings[0], warnings
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["sandbox"]["enabled"] is False
    assert "setting up uid map: Permission denied" in document["sandbox"]["reason"]
    if os.environ.get("ESR_MODEL_ZOO"):  # the baseline's weights are there: the run is complete
        assert status == 0


def test_required_exits_2_with_the_reason(no_user_namespaces: Path, tmp_path: Path, capsys) -> None:
    data = _tiny_data(tmp_path / "data")
    good = _submission(tmp_path, "good")
    argv = ["evaluate", str(good), "--data", str(data), "--sandbox", "required"]
    status = esr([*argv, *_options(tmp_path, tmp_path)])
    assert status == 2
    error = capsys.readouterr().err
    assert "--sandbox required" in error and "Permission denied" in error
    assert not (tmp_path / "out" / "results.json").exists()
