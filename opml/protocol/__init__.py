"""The protocol as plain data, apart from any chain or VM run: its types (`types`), deployment parameters
(`parameters`), dissection points (`dissection`) and what claims and moves carry (`claims`)."""
