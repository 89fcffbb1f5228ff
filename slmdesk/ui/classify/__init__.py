"""The Classify tab: set up a classifier, classify texts, review, export and evaluate."""
