"""The Models tab: installed models, the curated catalog, hub search, downloads, settings."""
