"""slmdesk: small language models on the desktop, offline."""

import os

# huggingface_hub reads this once, at import. Off, it sends no telemetry and does not
# fetch its "agent harnesses" list while building request headers.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# The cross-tool opt-out, for any library (or helper process) that honours it rather than
# its own switch. slmdesk itself sends nothing anywhere.
os.environ.setdefault("DO_NOT_TRACK", "1")

__version__ = "0.1.0"
APP_NAME = "slmdesk"
