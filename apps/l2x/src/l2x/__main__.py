"""``python -m l2x``."""

import sys

from l2x.cli import main

if __name__ == "__main__":
    sys.exit(main())
