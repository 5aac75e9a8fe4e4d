"""The fuzz suite: every public entry point × every input mutation (issue 17)."""
