"""Small checkpoints shipped with edgekd (made by benchmarks/make_default_teacher.py)."""
