"""The challenger agent: re-checks every claim and disputes the wrong ones.

It starts computing a request's trace the moment the request is seen, so a claim's check is ready
when the claim is revealed; it compares every claim's final state with its own within the claim's
window, challenges with its bond when they differ, and plays the game to its end: it picks the
first segment it disagrees with each round, proves the last step itself (anyone may), and calls
`timeout` when the defender's clock runs out. A game it wins gives back its bond and a refund per move
it made (from the claim's bond; no prize: docs/contracts.md). It plays every game to its end even after
another game has rejected the claim, since a game it abandons is lost on time, and it ends the claim's
other games by `timeout` when their clocks run out, since the rest of the claim's bond is burned only
when its last game ends (opml.agents.disputes). Credits are withdrawn on their own schedule by the
runtime.
"""

from __future__ import annotations

from ..chain.events import ChainEvent
from ..errors import OpmlError
from .disputes import DisputingAgent


class ChallengerAgent(DisputingAgent):
    role = "challenger"

    def on_request(self, event: ChainEvent) -> None:
        try:
            self.prepare(event.args["requestId"])
        except OpmlError as error:  # its program or model is not known yet: the claim's check will say
            self.log.info("cannot prepare a request's trace yet", request=event.args["requestId"], reason=str(error))

    def checks_claims_of(self, request_id: int) -> bool:
        return True
