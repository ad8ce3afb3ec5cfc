"""Decisioning: the next-best offer, abandoned-cart triggers and the one contact policy
that every channel honours."""
