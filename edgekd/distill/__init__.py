"""Distillation: losses (one registry), the training loop, and the teacher-output cache."""
