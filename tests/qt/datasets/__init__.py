"""Tests of slmdesk/ui/datasets/."""
