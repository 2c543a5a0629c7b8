"""`python -m vsmmon` is the `vsmmon` command."""

import sys

from vsmmon.cli.main import main

sys.exit(main())
