"""The challenger API's response bodies: the read model's (opml.readmodel.schemas), re-exported here."""

from opml.readmodel.schemas import (  # noqa: F401
    BondOut,
    DisputeOut,
    DisputePage,
    FinalStepOut,
    GameBriefOut,
    GameBriefPage,
    LeastLeftOut,
    MoveOut,
    RequestBriefOut,
    RequestBriefPage,
    RoundOut,
    TransactionOut,
)
