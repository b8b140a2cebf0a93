"""Use cases that cross domains: one small module each."""
