"""Remote engines: saved OpenAI-compatible endpoints, chat and classification through them."""
