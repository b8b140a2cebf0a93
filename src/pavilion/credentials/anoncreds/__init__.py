"""AnonCreds (anoncreds-rs) as a credential format: credential definitions per DP, revocation
registries (the accumulator) that roll over when full, and published status-list deltas."""
