"""Pipelines: ingest, train, evaluate, register; and the `omni` command line."""
