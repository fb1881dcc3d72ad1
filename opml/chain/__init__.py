"""The chain side: the local node, the contracts built by forge, and calls into them."""
