"""Loss functions: pure functions on tensors (shapes in the docstrings), tested alone."""

from .paper import PaperProjections, dense_teacher_logits, paper_terms, paper_weights
from .representation import pool, representation_loss
from .sinkhorn import import_pot, sinkhorn
from .token_ot import build_vocab_map, sorted_cost, token_ot_distillation

__all__ = [
    "PaperProjections", "build_vocab_map", "dense_teacher_logits", "import_pot", "paper_terms", "paper_weights",
    "pool", "representation_loss", "sinkhorn", "sorted_cost", "token_ot_distillation",
]  # fmt: skip
