"""The registry's deployment parameters, as plain data (no web3: the CLI shows their defaults at once)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

ETHER = 10**18
BPS = 10_000


@dataclass(frozen=True)
class Parameters:
    """Deployment parameters; the defaults suit a local chain (docs/contracts.md has public-chain values)."""

    arity: int = 16
    claim_bond: int = ETHER // 10
    challenge_bond: int = ETHER // 10
    burn_share_bps: int = 5_000
    challenge_window: int = 20  # seconds
    clock_budget: int = 60  # seconds per side
    max_step_limit: int = 1 << 30  # about 4 s of VM time here
    request_timeout: int = 600
    callback_gas_limit: int = 200_000

    def as_struct(self) -> tuple[int, ...]:
        """In the order of InferenceRegistry.Parameters."""
        return tuple(getattr(self, item.name) for item in fields(self))


# The largest request all-MiniLM-L6-v2 needs: 16 tokens are 1.63e10 steps (docs/models.md), and 2^34 is
# also the vm-worker's own cap, so a limit above it could not be served by the agents here anyway.
MINILM_STEP_LIMIT = 1 << 34


def sized_for(
    max_step_limit: int,
    base: Parameters = Parameters(),
    *,
    steps_per_second: int = 150_000_000,
    transaction_seconds: int = 2,
    query_seconds: int = 8,
    margin_seconds: int = 30,
) -> Parameters:
    """`base` with `max_step_limit`, its challenge window and clocks grown to cover a run of that many steps
    (docs/contracts.md, "sizing the clocks"): with T the time of the whole run and R the rounds,

        challengeWindow >= T + transaction + margin       (a challenger runs the claim before disputing)
        clockBudget     >= T + R x (query + transaction) + margin   (an agent that lost its cache recomputes)

    The default rate is half of what the VM does here with the two cores shared (about 300M steps/s,
    docs/benchmarks.md): a busy machine must not turn an honest challenger into a late one. A round's state
    query is allowed 8 s: a first round of 15 states spread over a MiniLM run takes 0.26 s from the run's
    snapshots (bench/run_store.py), so this leaves room for a worker busy with other runs. Never shrinks
    what `base` has. For MINILM_STEP_LIMIT the window is about 2.5 minutes and the clocks 4: the local
    default stays at 2^30 with a 20 s window, since every honest claim waits out its window."""
    run = math.ceil(max_step_limit / steps_per_second)
    rounds = 0
    while base.arity**rounds < max_step_limit:  # integers: a float log could round 16^9 up to 10 rounds
        rounds += 1
    window = run + transaction_seconds + margin_seconds
    clock = run + rounds * (query_seconds + transaction_seconds) + margin_seconds
    return replace(
        base,
        max_step_limit=max_step_limit,
        challenge_window=max(base.challenge_window, window),
        clock_budget=max(base.clock_budget, clock),
        request_timeout=max(base.request_timeout, 2 * (run + window)),  # served well before it may be cancelled
    )


def kept_share(parameters: Parameters, bond: int) -> int:
    """What the winner gets of a forfeited bond: the bond less its burned share (as the contract rounds)."""
    return bond - bond * parameters.burn_share_bps // BPS
