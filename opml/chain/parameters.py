"""The registry's deployment parameters, as plain data (no web3: the CLI shows their defaults at once)."""

from __future__ import annotations

from dataclasses import dataclass, fields

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


def kept_share(parameters: Parameters, bond: int) -> int:
    """What the winner gets of a forfeited bond: the bond less its burned share (as the contract rounds)."""
    return bond - bond * parameters.burn_share_bps // BPS
