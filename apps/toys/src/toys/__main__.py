"""``python -m toys``."""

import sys

from toys.cli import main

if __name__ == "__main__":
    sys.exit(main())
