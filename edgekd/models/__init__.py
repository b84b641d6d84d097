"""Student families, teacher loaders and model counting. Heavy imports happen inside functions."""
