"""The model library: curated catalog, hub search, downloads, discovery, fit estimates."""
