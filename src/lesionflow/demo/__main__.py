"""``python -m lesionflow.demo DATA_DIR [--seed N]``: draw the demo data set into DATA_DIR."""

import sys

from .writer import main

sys.exit(main())
