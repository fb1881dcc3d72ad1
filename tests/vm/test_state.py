"""State encoding: layout, round trip, hash, bad encodings."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opml.vm.merkle import keccak256
from opml.vm.state import STATE_BYTES, State, StateDecodeError

u32 = st.integers(0, 2**32 - 1)
states = st.builds(
    State,
    mem_root=st.binary(min_size=32, max_size=32),
    pc=u32,
    next_pc=u32,
    lo=u32,
    hi=u32,
    heap=u32,
    exit_code=st.integers(0, 255),
    exited=st.booleans(),
    step=st.integers(0, 2**64 - 1),
    registers=st.tuples(*[u32] * 32),
)


@given(states)
def test_round_trip(state):
    encoded = state.encode()
    assert len(encoded) == STATE_BYTES == 190
    assert State.decode(encoded) == state
    assert state.hash == keccak256(encoded)


def test_field_offsets():
    state = State(
        mem_root=bytes(range(32)),
        pc=0x01020304,
        next_pc=0x05060708,
        lo=9,
        hi=10,
        heap=0x80000000,
        exit_code=0xF1,
        exited=True,
        step=0x0102030405060708,
        registers=tuple(range(100, 132)),
    )
    data = state.encode()
    assert data[:32] == bytes(range(32))
    assert data[32:36] == bytes.fromhex("01020304")
    assert data[36:40] == bytes.fromhex("05060708")
    assert int.from_bytes(data[40:44], "big") == 9
    assert int.from_bytes(data[44:48], "big") == 10
    assert data[48:52] == bytes.fromhex("80000000")
    assert data[52] == 0xF1 and data[53] == 1
    assert data[54:62] == bytes.fromhex("0102030405060708")
    assert int.from_bytes(data[62:66], "big") == 100
    assert int.from_bytes(data[186:190], "big") == 131


@pytest.mark.parametrize("data", [b"", bytes(189), bytes(191)])
def test_wrong_length_is_rejected(data):
    with pytest.raises(StateDecodeError):
        State.decode(data)


def test_exited_flag_must_be_a_boolean():
    data = bytearray(State(mem_root=bytes(32), pc=0, next_pc=4).encode())
    data[53] = 2
    with pytest.raises(StateDecodeError):
        State.decode(bytes(data))
