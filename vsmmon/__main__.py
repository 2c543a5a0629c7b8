"""`python -m vsmmon` is the `vsmmon` command."""

import sys

from vsmmon.cli import main

sys.exit(main())
