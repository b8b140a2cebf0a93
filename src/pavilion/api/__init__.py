"""The HTTP layer: translates requests to use cases and errors to problem+json, nothing more."""
