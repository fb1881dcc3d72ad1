"""OPML: optimistic machine learning on a blockchain.

The shared package used by every service, agent and the `opml` CLI.
"""

__version__ = "0.1.0"
