"""Data sets for fine-tuning and evaluation: file formats, splits, quality checks, data
cards and evaluation history. Plain Python over ``slmdesk.store.datasets``; no Qt.

Import the modules themselves (``slmdesk.datasets.formats`` and so on): this package
imports nothing, so that the command line can name the export formats without loading the
store (sqlite-utils pulls numpy: ~0.2 s of every start).
"""

EXPORT_FORMATS = ("openai", "sharegpt", "alpaca", "jsonl", "csv")
