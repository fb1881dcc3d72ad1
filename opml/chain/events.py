"""Reading a contract's events from a block cursor, in ranges that shrink when the node refuses.

Public RPC providers cap `eth_getLogs` ranges (and result sizes) in different ways; the
field's agents stall on exactly that. `EventReader.read` asks for at most `max_range`
blocks at a time, halves the range (for good) on any RPC error, and never reads past
`head - confirmations`. The caller keeps the cursor (the last block
fully read) and passes it back: after a restart it resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from eth_utils import event_abi_to_log_topic
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3RPCError

from .client import with_retries
from .errors import ChainUnavailable


@dataclass(frozen=True)
class ChainEvent:
    name: str
    args: dict[str, Any]
    block_number: int
    log_index: int
    tx_hash: bytes
    block_timestamp: int = 0  # chain time of its block (0 where the reader was not asked for it)

    @property
    def position(self) -> tuple[int, int]:
        return self.block_number, self.log_index


class EventReader:
    def __init__(
        self,
        w3: Web3,
        contract: Contract,
        *,
        confirmations: int = 0,
        max_range: int = 2_000,
        min_range: int = 1,
    ):
        self.w3 = w3
        self.contract = contract
        self.confirmations = confirmations
        self.max_range = max_range
        self.min_range = min_range
        self.range = max_range
        self._events = {
            event_abi_to_log_topic(entry): getattr(contract.events, entry["name"])()
            for entry in contract.abi
            if entry["type"] == "event"
        }

    def safe_head(self) -> int:
        """The newest block with enough confirmations."""
        head = with_retries(lambda: self.w3.eth.block_number, what="reading the block number")
        return max(head - self.confirmations, 0)

    def head(self) -> tuple[int, int]:
        """The newest block with enough confirmations, and its chain time."""
        block = with_retries(lambda: self.w3.eth.get_block("latest"), what="reading the newest block")
        number = max(block["number"] - self.confirmations, 0)
        if number != block["number"]:
            return number, self._timestamp(number)
        return number, block["timestamp"]

    def read(self, cursor: int, until: int | None = None, *, timestamps: bool = False) -> tuple[list[ChainEvent], int]:
        """Events of blocks cursor+1 .. until (the safe head when not given: `until` is taken as safe), in chain
        order, and the new cursor; with `timestamps`, each event carries its block's chain time (one more call
        per block that has events)."""
        last = self.safe_head() if until is None else until
        events: list[ChainEvent] = []
        start = cursor + 1
        while start <= last:
            end = min(start + self.range - 1, last)
            try:
                logs = with_retries(lambda: self._get_logs(start, end), what=f"reading logs {start}-{end}")
            except (Web3RPCError, ValueError) as error:
                if self.range <= self.min_range:
                    raise ChainUnavailable(f"the node refuses eth_getLogs for block {start}: {error}") from None
                # a provider's limit does not move: never ask for this much again
                self.range = self.max_range = max(self.range // 2, self.min_range)
                continue
            events.extend(logs)
            start = end + 1
        if timestamps:
            times = {number: self._timestamp(number) for number in {event.block_number for event in events}}
            events = [dataclasses.replace(event, block_timestamp=times[event.block_number]) for event in events]
        return sorted(events, key=lambda event: event.position), max(cursor, last)

    def _timestamp(self, number: int) -> int:
        return with_retries(lambda: self.w3.eth.get_block(number)["timestamp"], what=f"reading block {number}")

    def query(self, event_name: str, from_block: int, **indexed: Any) -> list[ChainEvent]:
        """Every `event_name` event since `from_block` whose indexed arguments match (e.g. gameId=3)."""
        event = getattr(self.contract.events, event_name)
        logs = with_retries(
            lambda: event.get_logs(from_block=from_block, argument_filters=indexed or None),
            what=f"reading {event_name} events",
        )
        return [self._typed(entry) for entry in logs]

    def _get_logs(self, start: int, end: int) -> list[ChainEvent]:
        raw = self.w3.eth.get_logs({"address": self.contract.address, "fromBlock": start, "toBlock": end})
        decoded = []
        for entry in raw:
            event = self._events.get(bytes(entry["topics"][0])) if entry["topics"] else None
            if event is not None:
                decoded.append(self._typed(event.process_log(entry)))
        return decoded

    @staticmethod
    def _typed(entry) -> ChainEvent:
        return ChainEvent(
            name=entry["event"],
            args=dict(entry["args"]),
            block_number=entry["blockNumber"],
            log_index=entry["logIndex"],
            tx_hash=bytes(entry["transactionHash"]),
        )
