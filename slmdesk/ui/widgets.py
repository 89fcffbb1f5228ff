"""Old home of the shared small widgets, kept for the tabs not yet moved to ui/common."""

from slmdesk.ui.common.widgets import error_banner

__all__ = ["error_banner"]
