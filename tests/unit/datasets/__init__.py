"""Tests of slmdesk.datasets."""
