"""Teacher: load a LLaMA-family causal LM (`load`), adapt it to tagged text (`adapt`), cache its outputs (`cache`)."""
