"""Learned objects with a small fit / recommend / predict_proba / save / load contract."""
