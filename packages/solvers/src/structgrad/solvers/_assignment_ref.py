"""Placeholder twin (replaced by the real one)."""
