"""Fine-tuning jobs (run in their own process), adapters and trained heads."""
