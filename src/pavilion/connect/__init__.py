"""Connections to data providers: endpoint choice under residency rules, and the DP client."""
