"""The Chat tab: conversations, the transcript, the composer and the chat turn's lifecycle."""
