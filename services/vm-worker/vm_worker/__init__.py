"""The vm-worker service: runs programs in the VM and answers for their traces over HTTP.

An execution is a resource keyed by its content (program root P, model root M, input root
I, step limit), so every replica computes the same id and any replica sharing the store
directory can recompute any execution it has never seen.
"""
