"""The coordinator reads replies with harness.runner.messages.read_reply: replies only, no code run."""

from __future__ import annotations

import pickle
import struct
from multiprocessing.reduction import ForkingPickler

import blake3
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
    msg.ImageTimed(1, 20.25, b"\x01" * 20, 0, (5.0, 5.02), (1, 3, 8, 12)),
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


# BLAKE3 of the empty input, from the specification's test vectors (github.com/BLAKE3-team/BLAKE3,
# test_vectors/test_vectors.json, input_len 0): the library is the hash it claims to be.
BLAKE3_OF_NOTHING = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def test_the_output_digest_is_blake3_of_the_shape_then_the_float32_bytes() -> None:
    assert blake3.blake3(b"").hexdigest() == BLAKE3_OF_NOTHING
    values = np.linspace(0, 1, 24, dtype=np.float32).reshape(1, 3, 2, 4)
    by_hand = struct.pack("<4Q", 1, 3, 2, 4) + values.tobytes()
    assert msg.output_digest(values) == blake3.blake3(by_hand).digest()
    assert len(msg.output_digest(values)) == 32


def test_the_output_digest_binds_every_value_and_the_shape() -> None:
    values = np.linspace(0, 1, 24, dtype=np.float32).reshape(1, 3, 2, 4)
    committed = msg.output_digest(values)
    for index in (0, 11, 23):  # the first, a middle and the last value, each one float32 step away
        changed = values.copy()
        changed.flat[index] = np.nextafter(changed.flat[index], np.float32(2))
        assert msg.output_digest(changed) != committed
    assert msg.output_digest(values.reshape(1, 3, 4, 2)) != committed  # same bytes, another shape


def test_the_output_digest_is_of_the_float32_values_whatever_their_layout() -> None:
    values = np.linspace(0, 1, 24, dtype=np.float32).reshape(1, 3, 2, 4)
    strided = np.asfortranarray(values)
    assert not strided.flags.c_contiguous
    assert msg.output_digest(strided) == msg.output_digest(values)
    assert msg.output_digest(values.astype(np.float64)) == msg.output_digest(values)
