"""Lanes on a Ray cluster: each lane a placement-group bundle of one GPU (or a few CPUs), each
submission's worker a Ray actor in it, which runs the worker process of a local run as its child.

Every worker is an actor of its own, so it is a process of its own, as with the local executor; the
actors of one lane share the bundle's GPU (a small fraction each), so a submission and the baseline
it is compared with are timed on the same device. The actor holds no submission code: it is a
:class:`~harness.runner.lanes.LocalExecutor` of one lane on its node, which starts the worker as a
local run does (under ``bwrap`` when the run's sandbox is enabled, reading its own copy of the LR
images in the node's shared memory, writing its timed outputs to an output slot the actor made:
:mod:`harness.runner.output_slot`), relays the requests to it, and ends it when the actor is
closed or killed (``bwrap --die-with-parent``; a forked worker follows its parent). A worker that
dies or overruns its budget is reported as a local one is, with the same reason.

Ray restarts a lost actor (its process killed, its node lost) once (``max_restarts=1``) and runs
the request it was answering again (``max_task_retries=1``); the actor is built from its ``Load``
request, so a restarted one starts its worker and loads its model again, and the coordinator sends
only the work not yet checkpointed. The handle notices a restart (a new incarnation of the actor
answers) and records it as a retry.

Ray is an optional dependency (``pip install 'esr-harness[ray]'``). Data, weights, submissions' code,
``--cache-dir`` and the Python environment (with its ``bwrap``) must be at the same paths on every
node (a shared filesystem) for a run that spans machines; each lane's node is probed for the
sandbox when the run's is enabled.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.errors import HarnessError
from harness.runner import messages as msg
from harness.runner import sandbox as sandboxing
from harness.runner.lanes import Lane, LocalExecutor, WorkerHandle, output_slot_values
from harness.runner.process import WorkerLost
from harness.timing import device_fingerprint

# The share of a lane's GPU (or CPUs) each worker actor asks for: many fit, none is refused.
_SHARE = 0.01
# How long a closing actor may take to shut its worker down and remove its images before it is killed.
_CLOSE_TIMEOUT_S = 30.0
# How long reading the worker's CPU time from its actor may take before the reading is given up.
_READ_TIMEOUT_S = 10.0


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HarnessError(
            "--executor ray: Ray is not installed; pip install 'esr-harness[ray]' (or pip install ray)"
        ) from None
    return ray


class _RayWorker:
    """The actor: a local executor of one lane whose worker process, its child, it starts and loads
    when it is built (or rebuilt), then relays requests to.

    A method answers the replies so far and, once the worker is lost, the reason (the local
    executor's :class:`WorkerLost` message); after that every request is answered with it. A lost
    worker is not started again (a local one is not either): Ray restarts only a lost actor.
    """

    def __init__(
        self,
        name: str,
        load: msg.Load,
        log_path: str,
        budget_s: float,
        sandbox: sandboxing.Sandbox,
        doing: str,
    ) -> None:
        self.incarnation = uuid.uuid4().hex
        self.local = LocalExecutor([torch.device(load.device)], sandbox=sandbox)
        self.worker: WorkerHandle | None = None
        self.lost: str | None = None
        self.loaded: msg.Reply | None = None
        # Where the timed outputs the coordinator does not keep are copied to: touched now, not in a round.
        self.scratch = np.zeros(output_slot_values(load), np.float32)
        try:
            self.worker = self.local.start(self.local.lanes[0], name, load, Path(log_path), budget_s)
            self.loaded = self.worker.request(load, doing=doing)
        except WorkerLost as lost:
            self._lose(str(lost))

    def _lose(self, reason: str) -> None:
        self.lost = reason
        self.close()

    def identity(self) -> dict[str, Any]:
        ray = _ray()
        return {"incarnation": self.incarnation, "pid": os.getpid(), "node": ray.util.get_node_ip_address()}

    def load_reply(self) -> tuple[list[msg.Reply], str | None, None, dict[str, Any]]:
        return ([self.loaded] if self.loaded is not None else []), self.lost, None, self.identity()

    def handle(
        self, request: msg.Request, doing: str, copy_values: int = 0, keep: bool = False
    ) -> tuple[list[msg.Reply], str | None, np.ndarray | str | None, dict[str, Any]]:
        """The worker's replies to ``request`` (streamed ones first); the reason once it is lost.

        With ``copy_values`` (a timed request), that many float32 values of the worker's output
        slot are copied here, on the slot's node, right after the reply, and sent back when the
        coordinator ``keep``s them: what it keeps stays with the actor, the worker is sent
        ``request`` alone.
        """
        replies: list[msg.Reply] = []
        kept = None
        if self.worker is not None:
            try:
                if copy_values and isinstance(request, msg.TimeImage):
                    fresh = keep or copy_values > self.scratch.size
                    into = np.empty(copy_values, np.float32) if fresh else self.scratch[:copy_values]
                    reply, kept = self.worker.request_copying_output(request, into, doing=doing)
                    kept = kept if keep or isinstance(kept, str) else None
                    replies.append(reply)
                else:
                    replies.append(self.worker.request(request, on_progress=replies.append, doing=doing))
            except WorkerLost as lost:
                self._lose(str(lost))
        return replies, self.lost, kept, self.identity()

    def cpu_seconds(self) -> tuple[float | None, str]:
        """The CPU time of the worker's processes, read from ``/proc`` on the actor's node, and
        the actor's incarnation (a restarted actor's worker counts from zero again)."""
        return (self.worker.cpu_seconds() if self.worker is not None else None), self.incarnation

    def close(self) -> None:
        """Shut the worker down (killed if it does not go) and remove the actor's copy of the images."""
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        self.local.close()
        self.lost = self.lost or "the worker was closed"


def _probe(threads: int, device_type: str, bwrap: str | None) -> dict[str, Any]:
    """Where a bundle is: its node and GPU, the fingerprint of the device a worker there sees, and
    (given the run's ``bwrap``) why a sandbox cannot start there, None when it can."""
    ray = _ray()
    fingerprint = {**device_fingerprint("cuda" if device_type == "cuda" else "cpu"), "num_threads": threads}
    return {
        "node": ray.util.get_node_ip_address(),
        "gpus": ray.get_gpu_ids(),
        "fingerprint": fingerprint,
        "sandbox": sandboxing.probe(bwrap) if bwrap is not None else None,
    }


class RayWorkerHandle:
    """A worker actor, spoken to with the coordinator/worker requests, within a time budget."""

    def __init__(self, actor: Any, name: str, log_path: Path, budget_s: float) -> None:
        self.actor = actor
        self.name = name
        self.log_path = log_path
        self.budget_s = budget_s
        self.remaining_s = budget_s
        self.retries: list[str] = []
        self.identity: dict[str, Any] | None = None
        self._cpu_read_by: str | None = None  # the incarnation of the actor that read it last

    def _call(
        self, reference: Any, doing: str
    ) -> tuple[list[msg.Reply], str | None, np.ndarray | str | None]:
        ray = _ray()
        started = time.monotonic()
        try:
            replies, lost, kept, identity = ray.get(reference, timeout=max(self.remaining_s, 0.001))
        except ray.exceptions.GetTimeoutError:
            self.kill()
            raise WorkerLost(
                f"worker timed out (no result within the {self.budget_s:g} s limit) during {doing}"
            ) from None
        except ray.exceptions.RayActorError as error:
            retried = " (Ray had restarted it once already)" if self.retries else ""
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise WorkerLost(f"worker lost during {doing}{retried}: {reason}") from None
        finally:
            self.remaining_s -= time.monotonic() - started
        if self.identity is not None and identity["incarnation"] != self.identity["incarnation"]:
            self.retries.append(
                f"during {doing}: the worker's actor (pid {self.identity['pid']} on {self.identity['node']}) "
                f"was lost; Ray restarted it (pid {identity['pid']} on {identity['node']}) and ran the request again"
            )
        self.identity = identity
        return replies, lost, kept

    def request(
        self,
        request: msg.Request,
        on_progress: Callable[[msg.ImageOutput], Any] | None = None,
        doing: str = "",
    ) -> msg.Reply:
        doing = doing or type(request).__name__
        if isinstance(request, msg.Load):  # the actor loaded its model when it was built
            replies, lost, _ = self._call(self.actor.load_reply.remote(), doing)
        else:
            replies, lost, _ = self._call(self.actor.handle.remote(request, doing), doing)
        for reply in replies if lost is not None else replies[:-1]:
            if isinstance(reply, msg.ImageOutput) and on_progress is not None:
                on_progress(reply)
        if lost is not None:
            raise WorkerLost(lost)
        return replies[-1]

    def request_copying_output(
        self, request: msg.TimeImage, into: np.ndarray, doing: str = "", keep: bool = True
    ) -> tuple[msg.Reply, np.ndarray | str | None]:
        """As a local worker's: the actor copies its worker's slot after the reply and, when they
        are kept, sends the values back with it (in the same call, so a restarted actor re-runs
        both together)."""
        doing = doing or type(request).__name__
        replies, lost, kept = self._call(self.actor.handle.remote(request, doing, into.size, keep), doing)
        if lost is not None:
            raise WorkerLost(lost)
        if isinstance(kept, np.ndarray):
            np.copyto(into, kept)
            kept = into
        return replies[-1], kept

    def cpu_seconds(self) -> float | None:
        """The worker's CPU time, read by its actor (outside the worker) on its node; None when
        the actor does not answer, or when it is not the one that read the last value (Ray
        restarted it in between: the two readings are of different processes)."""
        ray = _ray()
        try:
            seconds, incarnation = ray.get(self.actor.cpu_seconds.remote(), timeout=_READ_TIMEOUT_S)
        except ray.exceptions.RayError:
            return None
        comparable = self._cpu_read_by in (None, incarnation)
        self._cpu_read_by = incarnation
        return seconds if comparable else None

    def kill(self) -> None:
        """Kill the actor; its worker, its child, ends with it."""
        _ray().kill(self.actor, no_restart=True)

    def close(self) -> None:
        """Let the actor shut its worker down and remove its images, then kill it."""
        ray = _ray()
        with contextlib.suppress(ray.exceptions.RayError):
            ray.get(self.actor.close.remote(), timeout=_CLOSE_TIMEOUT_S)
        self.kill()


class RayExecutor:
    """``workers`` lanes on a Ray cluster (``address``; None starts a local instance for this run),
    whose workers are confined by ``sandbox`` as a local run's are."""

    def __init__(
        self,
        *,
        address: str | None,
        workers: int | None,
        device_type: str,
        threads: int,
        sandbox: sandboxing.Sandbox = sandboxing.OFF,
    ) -> None:
        ray = _ray()
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self._strategy = PlacementGroupSchedulingStrategy
        self._remove = remove_placement_group
        self.device_type = device_type
        self.threads = threads
        self.sandbox = sandbox
        self.started_here = not ray.is_initialized()
        if self.started_here:
            # A local instance for this command offers its lanes' CPUs even when they oversubscribe
            # the machine (--threads is a worker's torch threads, and a CPU lane's bundle as many).
            cpus = None
            if address is None and device_type == "cpu":
                cpus = max(os.cpu_count() or 1, (workers or 1) * threads)
            try:
                ray.init(
                    address=address,
                    num_cpus=cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except ConnectionError as error:
                raise HarnessError(
                    f"--ray-address {address}: cannot join the Ray cluster ({error})"
                ) from None
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if device_type == "cuda" and gpus == 0:
            self._shutdown()
            raise HarnessError("--executor ray --device cuda: the Ray cluster has no GPU")
        count = workers or (gpus if device_type == "cuda" else 1)
        bundle = {"GPU": 1, "CPU": 1} if device_type == "cuda" else {"CPU": threads}
        self.group = placement_group([dict(bundle) for _ in range(count)], strategy="SPREAD")
        try:
            ray.get(self.group.ready(), timeout=120)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise HarnessError(
                f"--ray-workers {count}: the Ray cluster cannot place {count} worker lane(s) of {bundle}"
            ) from None
        probe = ray.remote(_probe)
        where = ray.get(
            [
                probe.options(
                    scheduling_strategy=self._strategy(self.group, placement_group_bundle_index=index),
                    num_cpus=_SHARE,
                    num_gpus=_SHARE if device_type == "cuda" else 0,
                ).remote(threads, device_type, sandbox.bwrap if sandbox.enabled else None)
                for index in range(count)
            ]
        )
        refused = next(((index, found) for index, found in enumerate(where) if found["sandbox"]), None)
        if refused is not None:
            index, found = refused
            self.close()
            raise HarnessError(
                f"--sandbox: ray lane {index} ({found['node']}) cannot start the sandbox this host can: "
                f"{found['sandbox']} (docs/integrity.md; --sandbox off runs every lane without it)"
            )
        self.fingerprints = [found["fingerprint"] for found in where]
        self.lanes = [
            Lane(
                index,
                f"ray lane {index} ({found['node']} "
                + (f"GPU {found['gpus'][0]})" if found["gpus"] else "CPU)"),
                "cuda" if device_type == "cuda" else "cpu",
                exclusive=f"{found['node']}:{found['gpus'][0] if found['gpus'] else 'cpu'}",
                node=found["node"],
                same_clock=found["node"] == ray.util.get_node_ip_address(),
            )
            for index, found in enumerate(where)
        ]
        self._actor_class = ray.remote(_RayWorker)

    def start(
        self, lane: Lane, name: str, load: msg.Load, log_path: Path, budget_s: float
    ) -> RayWorkerHandle:
        """An actor on ``lane`` that starts the worker of ``name`` and loads it (in the same words
        as the worker pool, the load's failure reason says where it was loading)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        actor = self._actor_class.options(
            scheduling_strategy=self._strategy(self.group, placement_group_bundle_index=lane.index),
            num_cpus=_SHARE,
            num_gpus=_SHARE if self.device_type == "cuda" else 0,
            max_restarts=1,
            max_task_retries=1,
            name=None,
        ).remote(name, load, str(log_path), budget_s, self.sandbox, f"loading on {lane.label}")
        return RayWorkerHandle(actor, name, log_path, budget_s)

    def fingerprint(self, lane: Lane, threads: int) -> dict[str, Any]:
        return self.fingerprints[lane.index]

    def snapshot(self, lane: Lane) -> dict[str, Any] | None:
        """None: NVML of another node cannot be read from here (its fingerprint holds the state
        its actor saw when the lane was made)."""
        return None

    def _shutdown(self) -> None:
        if self.started_here:
            _ray().shutdown()

    def close(self) -> None:
        self._remove(self.group)
        self._shutdown()
