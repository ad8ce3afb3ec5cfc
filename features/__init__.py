"""Events and what is derived from them: schema, sources, identities, the synthetic generator."""
