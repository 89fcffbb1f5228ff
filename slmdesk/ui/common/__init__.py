"""Widgets and helpers that several of the window's tabs share."""
