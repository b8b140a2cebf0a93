"""The DP registry: data providers, their endpoints per region, auth and record schema."""
