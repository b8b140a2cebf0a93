"""Settings: one validated object, read once at start-up."""
