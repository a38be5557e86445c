"""Models of this feature (placeholder until built)."""
