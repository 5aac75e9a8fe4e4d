"""``python -m shootout``."""

import sys

from shootout.cli import main

if __name__ == "__main__":
    sys.exit(main())
