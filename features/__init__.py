"""Events and what is derived from them: schema, sources, identity stitching, the synthetic generator."""
