"""ML models for the VM: file formats, the numpy reference, conversion and training."""
