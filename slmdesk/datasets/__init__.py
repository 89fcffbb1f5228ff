"""Data sets for fine-tuning and evaluation: file formats, splits, quality checks, data
cards and evaluation history. Plain Python over ``slmdesk.store.datasets``; no Qt.

Import the modules themselves (``slmdesk.datasets.formats`` and so on): this package
imports nothing, because the store uses ``slmdesk.datasets.splits``.
"""
