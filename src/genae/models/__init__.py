"""Models: VAE / β-VAE / CVAE so far; the registry maps names to them."""

from genae.models.registry import MODELS, build, load

__all__ = ["MODELS", "build", "load"]
