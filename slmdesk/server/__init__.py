"""The OpenAI-compatible local HTTP server over slmdesk's own engine, models and classifier."""
