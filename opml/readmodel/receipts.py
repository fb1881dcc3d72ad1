"""Gas and sender of transactions, from their receipts, remembered (a mined receipt never changes)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from web3 import Web3

from ..chain.client import with_retries


class Receipts:
    def __init__(self, w3: Web3, capacity: int = 10_000):
        self.w3 = w3
        self.capacity = capacity
        self._known: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, tx_hash: str) -> tuple[int, str]:
        """The gas used by a mined transaction (reverted or not) and its sender."""
        with self._lock:
            if tx_hash in self._known:
                return self._known[tx_hash]
        receipt = with_retries(lambda: self.w3.eth.get_transaction_receipt(tx_hash), what="reading a receipt")
        known = (receipt["gasUsed"], receipt["from"])
        with self._lock:
            self._known[tx_hash] = known
            while len(self._known) > self.capacity:
                self._known.popitem(last=False)
        return known
