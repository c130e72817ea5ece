"""Lanes on a Ray cluster: each lane a placement-group bundle of one GPU (or a few CPUs), each
submission's worker a Ray actor in it.

Every worker is an actor of its own, so it is a process of its own, as with the local executor; the
actors of one lane share the bundle's GPU (a small fraction each), so a submission and the baseline
it is compared with are timed on the same device. Ray restarts a lost actor once
(``max_restarts=1``) and runs the request it was answering again (``max_task_retries=1``); the actor
is built from its ``Load`` request, so a restarted one loads its model again, and the coordinator
sends only the work not yet checkpointed. The handle notices a restart (a new incarnation of the
actor answers) and records it as a retry.

Ray is an optional dependency (``pip install 'esr-harness[ray]'``). Data, weights, submissions' code
and ``--cache-dir`` must be at the same paths on every node (a shared filesystem) for a run that
spans machines.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.runner import messages as msg
from harness.runner.lanes import Lane
from harness.runner.process import WorkerLost
from harness.runner.worker import SubmissionWorker, redirect_output
from harness.timing import device_fingerprint

# The share of a lane's GPU (or CPUs) each worker actor asks for: many fit, none is refused.
_SHARE = 0.01


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HarnessError(
            "--executor ray: Ray is not installed; pip install 'esr-harness[ray]' (or pip install ray)"
        ) from None
    return ray


class _RayWorker:
    """The actor: a SubmissionWorker whose model is loaded when the actor is built (or rebuilt)."""

    def __init__(self, load: msg.Load, log_path: str) -> None:
        redirect_output(log_path)
        self.incarnation = uuid.uuid4().hex
        self.worker = SubmissionWorker()
        (self.loaded,) = list(self.worker.handle(load))

    def identity(self) -> dict[str, Any]:
        ray = _ray()
        return {"incarnation": self.incarnation, "pid": os.getpid(), "node": ray.util.get_node_ip_address()}

    def load_reply(self) -> tuple[msg.Reply, dict[str, Any]]:
        return self.loaded, self.identity()

    def handle(self, request: msg.Request) -> tuple[list[msg.Reply], dict[str, Any]]:
        return list(self.worker.handle(request)), self.identity()


def _probe(threads: int, device_type: str) -> dict[str, Any]:
    """Where a bundle is: its node and GPU, and the fingerprint of the device a worker there sees."""
    ray = _ray()
    fingerprint = {**device_fingerprint("cuda" if device_type == "cuda" else "cpu"), "num_threads": threads}
    return {"node": ray.util.get_node_ip_address(), "gpus": ray.get_gpu_ids(), "fingerprint": fingerprint}


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

    def _call(self, method: Any, request: msg.Request | None, doing: str) -> tuple[Any, dict[str, Any]]:
        ray = _ray()
        started = time.monotonic()
        reference = method.remote() if request is None else method.remote(request)
        try:
            answer, identity = ray.get(reference, timeout=max(self.remaining_s, 0.001))
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
                f"during {doing}: the worker process (pid {self.identity['pid']} on {self.identity['node']}) "
                f"was lost; Ray restarted it (pid {identity['pid']} on {identity['node']}) and ran the request again"
            )
        self.identity = identity
        return answer, identity

    def request(
        self,
        request: msg.Request,
        on_progress: Callable[[msg.ImageOutput], Any] | None = None,
        doing: str = "",
    ) -> msg.Reply:
        doing = doing or type(request).__name__
        if isinstance(request, msg.Load):  # the actor loaded its model when it was built
            reply, _ = self._call(self.actor.load_reply, None, doing)
            return reply
        replies, _ = self._call(self.actor.handle, request, doing)
        for reply in replies[:-1]:
            if isinstance(reply, msg.ImageOutput) and on_progress is not None:
                on_progress(reply)
        return replies[-1]

    def cpu_seconds(self) -> float | None:
        return None  # the actor's process may be on another node

    def kill(self) -> None:
        _ray().kill(self.actor, no_restart=True)

    def close(self) -> None:
        self.kill()


class RayExecutor:
    """``workers`` lanes on a Ray cluster (``address``; None starts a local instance for this run)."""

    def __init__(self, *, address: str | None, workers: int | None, device_type: str, threads: int) -> None:
        ray = _ray()
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self._strategy = PlacementGroupSchedulingStrategy
        self._remove = remove_placement_group
        self.device_type = device_type
        self.threads = threads
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
                ).remote(threads, device_type)
                for index in range(count)
            ]
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
        log_path.parent.mkdir(parents=True, exist_ok=True)
        actor = self._actor_class.options(
            scheduling_strategy=self._strategy(self.group, placement_group_bundle_index=lane.index),
            num_cpus=_SHARE,
            num_gpus=_SHARE if self.device_type == "cuda" else 0,
            max_restarts=1,
            max_task_retries=1,
            name=None,
        ).remote(load, str(log_path))
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
