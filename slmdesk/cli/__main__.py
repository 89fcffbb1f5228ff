"""`python -m slmdesk.cli`: the command line, as `slmdesk` and `python -m slmdesk` run it."""

import sys

from slmdesk.cli import main

sys.exit(main())
