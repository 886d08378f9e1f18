"""`python -m rsmt_studio.app.cli ...`: the same as the `rsmt-studio` console script (tests and the Linux
bundle's launcher run it this way)."""

import sys

from rsmt_studio.app.cli import main

sys.exit(main())
