"""erbench: resilience of entropy models in split DNNs, measured in real coded bits."""

__version__ = "0.1.0"
