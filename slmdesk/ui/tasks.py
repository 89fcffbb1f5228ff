"""Old home of the background task runner, kept for the tabs not yet moved to ui/common."""

from slmdesk.ui.common.tasks import BackgroundTasks

__all__ = ["BackgroundTasks"]
