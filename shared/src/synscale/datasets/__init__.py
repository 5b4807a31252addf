"""Real datasets that exist offline (docs/architecture.md §9), as numpy arrays — no torch needed."""
