"""Readers that turn files into frames in the Omni schema, remembering where each row came from."""
