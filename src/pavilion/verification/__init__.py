"""Verifications: claims, their minimum-disclosure decision, and the record of each attempt."""
