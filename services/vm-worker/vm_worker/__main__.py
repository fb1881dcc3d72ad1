"""`python -m vm_worker`: serve the vm-worker with its settings from the environment."""

from .main import main

main()
