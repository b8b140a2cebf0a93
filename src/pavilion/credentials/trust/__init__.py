"""Trust chains: tenant issuer roots, data provider certificates and accreditations."""
