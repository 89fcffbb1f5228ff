"""The Train view: train a classifier or a chat model from a data set in a child process."""
