"""Every python code block of the package README runs."""

from pathlib import Path

from structgrad.testing.readme import readme_tests

README = Path(__file__).resolve().parent.parent / "README.md"

test_readme_has_an_example, test_readme_example_runs = readme_tests(README)
