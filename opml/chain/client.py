"""Talking to the chain: a connection that survives a node going away, and one transaction manager per key.

The transaction manager owns its key's nonce and sends a transaction the way the
field's agents learned to (op-challenger's txmgr): simulate it first (a revert is
decoded and raised before anything is sent), sign it locally, record its hash in a
journal *before* broadcasting it, broadcast with retries, wait for the receipt. After a
crash, a journal entry for the same intent is waited for instead of sent again, so a
move is never sent twice. Only standard JSON-RPC is used (anvil and Hardhat alike).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import requests
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError

from .errors import ChainUnavailable, TxReverted, decode_revert, revert_data

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECTION_ERRORS = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)
DEFAULT_TIMEOUT = 30.0


def connect(rpc_url: str, timeout: float = DEFAULT_TIMEOUT) -> Web3:
    """A web3 connection with a request timeout; nothing is asked of the node yet."""
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))


def with_retries(
    action: Callable[[], T], *, what: str, attempts: int = 5, backoff: float = 0.2, max_backoff: float = 5.0
) -> T:
    """Run `action`, retrying with exponential backoff while the node does not answer; then raise
    ChainUnavailable with a message a person can act on."""
    delay = backoff
    for attempt in range(attempts):
        try:
            return action()
        except CONNECTION_ERRORS as error:
            if attempt == attempts - 1:
                raise ChainUnavailable(f"{what}: the chain node does not answer ({type(error).__name__})") from None
            time.sleep(delay)
            delay = min(delay * 2, max_backoff)
    raise AssertionError("unreachable")


# --- the journal: intents and their transactions, written before broadcast ----------------------


@dataclass(frozen=True)
class JournalEntry:
    intent: str
    tx_hash: bytes
    nonce: int


class Journal(Protocol):
    def pending(self, intent: str) -> JournalEntry | None:
        """The last transaction recorded for `intent` whose outcome is not known yet."""
        ...

    def record(self, entry: JournalEntry) -> None:
        """Called before the transaction is broadcast."""
        ...

    def settle(self, tx_hash: bytes, status: int, gas_used: int, block_number: int) -> None:
        """Called once its receipt is known (status 1 mined, 0 reverted, -1 dropped)."""
        ...


class MemoryJournal:
    """A journal that lives as long as the process (the CLI, tests)."""

    def __init__(self) -> None:
        self.entries: dict[str, JournalEntry] = {}
        self.outcomes: dict[bytes, tuple[int, int, int]] = {}

    def pending(self, intent: str) -> JournalEntry | None:
        entry = self.entries.get(intent)
        return entry if entry is not None and entry.tx_hash not in self.outcomes else None

    def record(self, entry: JournalEntry) -> None:
        self.entries[entry.intent] = entry

    def settle(self, tx_hash: bytes, status: int, gas_used: int, block_number: int) -> None:
        self.outcomes[tx_hash] = (status, gas_used, block_number)


# --- sending -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A mined transaction."""

    tx_hash: bytes
    gas_used: int
    block_number: int
    resumed: bool = False  # a transaction sent before a restart, found mined
    contract_address: str | None = None  # of a deployment


class TransactionManager:
    """Sends contract calls from one key, one at a time per nonce."""

    def __init__(
        self,
        w3: Web3,
        private_key: str,
        journal: Journal | None = None,
        *,
        gas_margin: float = 1.3,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.05,
    ):
        self.w3 = w3
        self.account = Account.from_key(private_key)
        self.journal = journal or MemoryJournal()
        self.gas_margin = gas_margin
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self._nonce: int | None = None
        self._chain_id: int | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return self.account.address

    def nonce(self) -> int:
        """The next nonce this manager will use."""
        with self._lock:
            return self._next_nonce()

    def balance(self) -> int:
        return with_retries(lambda: self.w3.eth.get_balance(self.address), what="reading the balance")

    def send(self, call, *, value: int = 0, intent: str = "") -> Sent:
        """Simulate, sign, record, broadcast and wait for `call` (a web3 ContractFunction).

        Raises TxReverted (decoded) if the call would revert or reverted on-chain, ChainUnavailable if
        the node does not answer. With an `intent`, a transaction recorded for it before a crash is
        waited for instead of sending a new one.
        """
        action = intent or getattr(call, "fn_name", "transaction")
        if intent:
            resumed = self._resume(intent, action)
            if resumed is not None:
                return resumed
        with self._lock:
            gas = self._simulate(call, value, action)
            for attempt in range(3):
                nonce = self._next_nonce()
                transaction = with_retries(
                    lambda: call.build_transaction(
                        {
                            "from": self.address,
                            "value": value,
                            "nonce": nonce,
                            "gas": gas,
                            "chainId": self._chain(),
                        }
                    ),
                    what=f"{action}: preparing",
                )
                signed = self.account.sign_transaction(transaction)
                self.journal.record(JournalEntry(intent or action, bytes(signed.hash), nonce))
                try:
                    self._broadcast(signed.raw_transaction, action)
                except _NonceTaken:
                    self._nonce = None  # someone else used it (another process with this key): resync
                    continue
                self._nonce = nonce + 1
                break
            else:
                raise ChainUnavailable(f"{action}: could not find a free nonce for {self.address}")
        return self._await(bytes(signed.hash), call, value, action)

    def call_reverts(self, call, *, value: int = 0) -> TxReverted | None:
        """The revert `call` would meet now, if any (an eth_call; nothing is sent)."""
        try:
            self._simulate(call, value, getattr(call, "fn_name", "call"))
        except TxReverted as error:
            return error
        return None

    # --- internals -------------------------------------------------------------------------------

    def _chain(self) -> int:
        if self._chain_id is None:
            self._chain_id = with_retries(lambda: self.w3.eth.chain_id, what="reading the chain id")
        return self._chain_id

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = with_retries(
                lambda: self.w3.eth.get_transaction_count(self.address, "pending"), what="reading the nonce"
            )
        return self._nonce

    def _simulate(self, call, value: int, action: str) -> int:
        """eth_estimateGas, which is an eth_call too: a revert here is decoded and nothing is sent."""
        try:
            estimate = with_retries(
                lambda: call.estimate_gas({"from": self.address, "value": value}, "pending"),
                what=f"{action}: simulating",
            )
        except ContractLogicError as error:
            name, args = decode_revert(revert_data(error))
            if name == "unknown" and error.message:
                args = {"message": error.message}
            raise TxReverted(name, args, action=action) from None
        return int(estimate * self.gas_margin)

    def _broadcast(self, raw: bytes, action: str) -> None:
        try:
            with_retries(lambda: self.w3.eth.send_raw_transaction(raw), what=f"{action}: broadcasting")
        except (Web3RPCError, ValueError) as error:
            message = str(error).lower()
            if "already known" in message or "already imported" in message:
                return  # a retry of a broadcast that did reach the node
            if "nonce too low" in message or "nonce has already been used" in message:
                raise _NonceTaken() from None
            raise

    def _await(self, tx_hash: bytes, call, value: int, action: str, resumed: bool = False) -> Sent:
        receipt = self._wait_for_receipt(tx_hash, action)
        if receipt is None:
            self.journal.settle(tx_hash, -1, 0, 0)
            raise ChainUnavailable(f"{action}: transaction 0x{tx_hash.hex()} was not mined in {self.receipt_timeout} s")
        self.journal.settle(tx_hash, receipt["status"], receipt["gasUsed"], receipt["blockNumber"])
        if receipt["status"] != 1:
            raise self._reverted_on_chain(call, value, action, receipt["blockNumber"])
        return Sent(tx_hash, receipt["gasUsed"], receipt["blockNumber"], resumed, receipt.get("contractAddress"))

    def _wait_for_receipt(self, tx_hash: bytes, action: str):
        deadline = time.monotonic() + self.receipt_timeout
        while time.monotonic() < deadline:
            try:
                return with_retries(
                    lambda: self.w3.eth.get_transaction_receipt(tx_hash), what=f"{action}: waiting for the receipt"
                )
            except (TransactionNotFound, TimeExhausted):
                time.sleep(self.poll_interval)
        return None

    def _reverted_on_chain(self, call, value: int, action: str, block: int) -> TxReverted:
        """Replay a mined-but-reverted call at its block's parent to learn its error."""
        if call is None:
            return TxReverted("unknown", action=action)
        try:
            call.call({"from": self.address, "value": value}, block_identifier=block - 1)
        except ContractLogicError as error:
            return TxReverted(*decode_revert(revert_data(error)), action=action)
        except Exception:  # the replay itself failed: report what we know
            pass
        return TxReverted("unknown", action=action)

    def _resume(self, intent: str, action: str) -> Sent | None:
        """A transaction recorded for this intent before a restart: its receipt, or None if it never made it."""
        entry = self.journal.pending(intent)
        if entry is None:
            return None
        receipt = self._receipt(entry.tx_hash, action)
        if receipt is None and self._known_to_node(entry.tx_hash, action):
            receipt = self._wait_for_receipt(entry.tx_hash, action)  # still pending: wait for it
        if receipt is None:
            log.info("the transaction for %s never reached the chain; sending it again", intent)
            self.journal.settle(entry.tx_hash, -1, 0, 0)
            return None
        self.journal.settle(entry.tx_hash, receipt["status"], receipt["gasUsed"], receipt["blockNumber"])
        if receipt["status"] != 1:
            return None  # it reverted: the caller re-reads the chain and decides again
        return Sent(entry.tx_hash, receipt["gasUsed"], receipt["blockNumber"], True, receipt.get("contractAddress"))

    def _receipt(self, tx_hash: bytes, action: str):
        try:
            return with_retries(lambda: self.w3.eth.get_transaction_receipt(tx_hash), what=f"{action}: resuming")
        except TransactionNotFound:
            return None

    def _known_to_node(self, tx_hash: bytes, action: str) -> bool:
        try:
            with_retries(lambda: self.w3.eth.get_transaction(tx_hash), what=f"{action}: resuming")
        except TransactionNotFound:
            return False
        return True


class _NonceTaken(Exception):
    pass
