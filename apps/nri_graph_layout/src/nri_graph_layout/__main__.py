"""``python -m nri_graph_layout``."""

import sys

from nri_graph_layout.cli import main

if __name__ == "__main__":
    sys.exit(main())
