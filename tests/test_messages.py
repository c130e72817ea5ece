"""The coordinator reads replies with harness.runner.messages.read_reply: replies only, no code run."""

from __future__ import annotations

import pickle
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest

from harness.runner import messages as msg

REPLIES = [
    msg.Loaded({"threads": 2}, {"cudnn_benchmark": True}),
    msg.ImageOutput(3, np.arange(12, dtype=np.uint8).reshape(2, 2, 3)),
    msg.AccuracyDone(12.5, None),
    msg.ComplexityCounted({"params": 715176, "convs": np.int64(43)}),
    msg.TimingReady(),
    msg.WarmedUp(7),
    msg.ImageTimed(1, 20.25, 0, (5.0, 5.02), (1, 3, 8, 12)),
    msg.Failed("im0: output is None"),
]


def same(left: object, right: object) -> bool:
    if isinstance(left, np.ndarray):
        return isinstance(right, np.ndarray) and left.dtype == right.dtype and np.array_equal(left, right)
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(same(left[k], right[k]) for k in left)
        )
    if hasattr(left, "__dataclass_fields__"):
        return type(left) is type(right) and all(
            same(getattr(left, f), getattr(right, f)) for f in left.__dataclass_fields__
        )
    return left == right and type(left) is type(right)


@pytest.mark.parametrize("reply", REPLIES, ids=lambda reply: type(reply).__name__)
@pytest.mark.parametrize("protocol", [4, 5])
def test_every_reply_reads_back_as_sent(reply: msg.Reply, protocol: int) -> None:
    assert same(reply, msg.read_reply(pickle.dumps(reply, protocol=protocol)))
    assert same(reply, msg.read_reply(bytes(ForkingPickler.dumps(reply))))  # what a worker's pipe carries


class RunsCode:
    def __reduce__(self):
        return exec, ("raise SystemExit('ran')",)


def test_a_pickle_that_names_any_other_callable_is_refused_before_it_runs() -> None:
    with pytest.raises(msg.UnexpectedReply, match=r"names builtins\.exec, which is not part of the protocol"):
        msg.read_reply(pickle.dumps(RunsCode()))
    hidden = msg.Failed(RunsCode())  # inside a reply's field: refused all the same
    with pytest.raises(msg.UnexpectedReply, match="builtins.exec"):
        msg.read_reply(pickle.dumps(hidden))
    with pytest.raises(msg.UnexpectedReply, match=r"names os\.system"):
        msg.read_reply(b"cos\nsystem\n(S'true'\ntR.")  # protocol 0, written by hand


def test_plain_values_or_requests_are_not_replies() -> None:
    with pytest.raises(msg.UnexpectedReply, match="the reply is a dict, not a reply"):
        msg.read_reply(pickle.dumps({"index": 1}))
    with pytest.raises(msg.UnexpectedReply, match=r"names harness\.runner\.messages\.Shutdown"):
        msg.read_reply(pickle.dumps(msg.Shutdown()))
    with pytest.raises(msg.UnexpectedReply, match="not a readable message"):
        msg.read_reply(pickle.dumps(msg.WarmedUp(3))[:-4])
