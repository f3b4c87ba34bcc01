"""Scripts run inside the target interpreter. Standard library only; Python 3.6+ syntax."""
