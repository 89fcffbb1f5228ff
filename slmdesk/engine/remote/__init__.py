"""Remote OpenAI-compatible engines: HTTP transport, capability probe, chat, label scoring."""
