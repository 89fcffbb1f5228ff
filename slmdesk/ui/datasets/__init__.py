"""The Data sets tab: annotate, import, export, split, pre-label and evaluate."""
