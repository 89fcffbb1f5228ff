"""Tests of slmdesk.catalog."""
