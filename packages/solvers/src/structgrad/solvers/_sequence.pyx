# cython: language_level=3
"""Placeholder kernel module (replaced by the real kernel)."""
