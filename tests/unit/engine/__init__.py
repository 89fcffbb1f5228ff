"""Tests of slmdesk.engine."""
