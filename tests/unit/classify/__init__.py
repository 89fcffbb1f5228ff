"""Tests of slmdesk.classify."""
