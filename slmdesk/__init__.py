"""slmdesk: small language models on the desktop, offline."""

__version__ = "0.1.0"
APP_NAME = "slmdesk"
