"""Tests of slmdesk/ui/classify/."""
