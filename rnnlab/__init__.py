"""rnnlab: a lab bench for vanishing and exploding gradients in recurrent networks."""

__version__ = "0.1.0"
