"""The dispute game's logic, apart from the chain: dissection points, traces and the honest solver."""
