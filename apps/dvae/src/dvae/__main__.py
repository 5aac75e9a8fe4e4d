"""``python -m dvae``."""

import sys

from dvae.cli import main

if __name__ == "__main__":
    sys.exit(main())
