"""The registry's deployment parameters, as plain data (no web3: the CLI shows their defaults at once)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

ETHER = 10**18
GWEI = 10**9
BPS = 10_000

# The default refund per challenger move: the gas of an honest challenger's move (its challenge, each select,
# the final resolve) in a seed-model dispute, measured by bench/dispute_gas.py (mean 89,683 gas over 8 moves at
# k = 16, 98,567 at k = 32), rounded up to 100,000, at a reference gas price of 20 gwei: 0.002 ETH. A claim's
# refund pool (its bond less the burned share: 0.05 ETH by default) then covers 25 such moves, three whole seed
# disputes of 8 moves; a copycat or a liar's sybil earns about its own gas and no more.
CHALLENGER_MOVE_GAS = 100_000
REFERENCE_GAS_PRICE = 20 * GWEI
DEFAULT_MOVE_REFUND = CHALLENGER_MOVE_GAS * REFERENCE_GAS_PRICE  # 0.002 ETH


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
    move_refund: int = DEFAULT_MOVE_REFUND  # wei refunded per move to a challenger who proves a claim wrong

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


# A deployment serving a language model's generations (docs/llm-graph.md): a request's step limit bounds each node's
# run, and SmolLM2's longest node is its prompt's largest product, about 8.2e7 steps per prompt token
# (opml.models.llm.steps); 2^33 covers prompts of up to 83 tokens (a chat question with SmolLM2's default system
# message is 37 tokens for a 7-word question), a node run of at most 29 s at this machine's 300M steps/s.
LLM_STEP_LIMIT = 1 << 33
# The honest claim of a generation, computed natively by every party before it claims or challenges: 5 s for a
# 16-token prompt and 32 new tokens here (bench/llm_graph.py), about 10 s for 64; allowed 30 s on a busy machine.
LLM_NATIVE_SECONDS = 30
VALUE_TREE_NODES = (1 << 20) - 1  # the most nodes a graph claim can have (docs/two-phase.md)


def sized_for_llm(
    max_step_limit: int = LLM_STEP_LIMIT,
    base: Parameters = Parameters(),
    *,
    native_seconds: int = LLM_NATIVE_SECONDS,
    steps_per_second: int = 150_000_000,
    transaction_seconds: int = 2,
    query_seconds: int = 8,
    margin_seconds: int = 30,
) -> Parameters:
    """`base` for a deployment serving a language model's generations: `max_step_limit` bounds each node's run,
    and the window and clocks cover the two-phase game (docs/contracts.md, "sizing the clocks", with the native
    claim in place of the whole run):

        challengeWindow >= native + transaction + margin          (a challenger computes the claim natively)
        clockBudget     >= native + node run + R x (query + transaction) + margin

    R is phase 1's rounds over at most 2^20 - 1 nodes plus phase 2's over a node run of `max_step_limit` steps,
    and a node run is timed at the conservative rate of `sized_for` (a side runs the linked node once: the defender
    before its link, the challenger for phase 2; an agent that lost its cache also recomputes the claim). For
    LLM_STEP_LIMIT: a 62 s window, 258 s clocks (14 rounds)."""
    from .dissection import max_rounds

    node_run = math.ceil(max_step_limit / steps_per_second)
    rounds = max_rounds(VALUE_TREE_NODES, base.arity) + max_rounds(max_step_limit, base.arity)
    window = native_seconds + transaction_seconds + margin_seconds
    clock = native_seconds + node_run + rounds * (query_seconds + transaction_seconds) + margin_seconds
    return replace(
        base,
        max_step_limit=max_step_limit,
        challenge_window=max(base.challenge_window, window),
        clock_budget=max(base.clock_budget, clock),
        request_timeout=max(base.request_timeout, 2 * (native_seconds + node_run + window)),
    )


def kept_share(parameters: Parameters, bond: int) -> int:
    """What the winner gets of a forfeited bond: the bond less its burned share (as the contract rounds). Of a
    claim's bond, this is the refund pool of its challengers."""
    return bond - bond * parameters.burn_share_bps // BPS


def move_refund_of(parameters: Parameters, moves: int) -> int:
    """At most what a challenger who proves a claim wrong is refunded for its `moves` moves (besides its bond):
    `moves` x moveRefund, as far as the claim's refund pool goes (less if other games used some of it first)."""
    return min(moves * parameters.move_refund, kept_share(parameters, parameters.claim_bond))
