"""gpudoctor: a command-line doctor for GPU deep-learning setups."""

__version__ = "0.1.0"
