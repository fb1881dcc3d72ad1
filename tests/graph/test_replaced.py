"""`evaluate(..., replaced=...)`: a run that follows from a changed value (what a consistent liar claims), the
values before it untouched and every later one computed from it, whatever the value's kind."""

import numpy as np

from opml.graph.native import evaluate
from opml.graph.values import decode_value, encode_value


def shifted(value: bytes) -> bytes:
    """Every element one larger: a relu after it passes the change on."""
    return encode_value(decode_value(value).elements + np.float32(1))


def test_later_values_follow_from_a_changed_float_value(seed_model, input_7):
    honest = evaluate(seed_model, input_7)
    slot = 1  # the first node's value: the seed MLP's first linear layer
    lie = evaluate(seed_model, input_7, replaced={slot: shifted(honest.values[slot])})
    assert lie.values[:slot] == honest.values[:slot] and lie.values[slot] == shifted(honest.values[slot])
    assert lie.values[slot + 1] != honest.values[slot + 1]  # computed from the lie, not kept
    assert lie.final_state != honest.final_state  # the claim of the run that follows from the lie


def test_an_int32_value_is_read_as_its_kind(seed_model, input_7):
    honest = evaluate(seed_model, input_7)
    last = honest.node_count  # the output: replaced by an int32 value of the same shape
    shape = decode_value(honest.values[last]).elements.shape
    integers = encode_value(np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape))
    lie = evaluate(seed_model, input_7, replaced={last: integers})
    assert lie.values[last] == integers and lie.values[:last] == honest.values[:last]
