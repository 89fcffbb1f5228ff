"""Tests of slmdesk.store."""
