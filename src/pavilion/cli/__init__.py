"""Command-line interface of the Pavilion DP Connector."""
