"""The read side of the agent services: one query layer over the agents' store, the registry read at one block
and a receipts cache, returning the APIs' response models (opml.readmodel.schemas) directly.

    reads = ReadModel(store, registry, Receipts(registry.w3), address=our_address)
    reads.request(5)                                  # GET /inference-requests/5
    reads.requests(status="final", offset=0, limit=20)
    reads.dispute(3)                                  # GET /disputes/3
    reads.disputes(mine=True, status="active")
"""

from .receipts import Receipts
from .reports import ReadModel

__all__ = ["ReadModel", "Receipts"]
