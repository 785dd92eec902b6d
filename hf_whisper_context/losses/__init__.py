"""Loss functions: pure functions on tensors (shapes in the docstrings), tested alone."""

from .representation import pool, representation_loss
from .sinkhorn import import_pot, sinkhorn
from .token_ot import build_vocab_map, sorted_cost, token_ot_distillation

__all__ = ["build_vocab_map", "import_pot", "pool", "representation_loss", "sinkhorn", "sorted_cost",
           "token_ot_distillation"]  # fmt: skip
