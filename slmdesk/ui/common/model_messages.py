"""The banner message that a loaded model answers ("no model is loaded yet"): one wording,
shown by every tab that needs a model, and cleared by each when a model is loaded."""

from __future__ import annotations

from slmdesk.ui.common.widgets import ErrorBanner

NO_MODEL_LOADED = "No model is loaded yet. Pick one in the model list above."


def clear_no_model(banner: ErrorBanner) -> None:
    """A model is loaded: the "no model" message is stale (any other message stays)."""
    if banner.text() == NO_MODEL_LOADED:
        banner.clear_error()
