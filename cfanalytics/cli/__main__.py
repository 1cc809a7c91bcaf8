"""``python -m cfanalytics.cli``: the command line (as ``python -m cfanalytics``)."""

import sys

from ._main import main

sys.exit(main())
