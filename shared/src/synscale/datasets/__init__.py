"""Real datasets that exist offline (DESIGN §5), as numpy arrays — no torch needed."""
