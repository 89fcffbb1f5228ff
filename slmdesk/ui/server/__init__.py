"""The Server tab (the local OpenAI-compatible server over the window's engine) and the
remote engines dialog."""
