"""Loss functions: pure functions on tensors (shapes in the docstrings), tested alone."""

from .sinkhorn import import_pot, sinkhorn

__all__ = ["import_pot", "sinkhorn"]
