"""The nox sessions of the monorepo, imported by noxfile.py (one module per kind)."""
