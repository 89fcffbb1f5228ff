"""`python -m slmdesk` and the PyInstaller entry point."""

import sys

from slmdesk.cli import main

if __name__ == "__main__":
    sys.exit(main())
