"""Proof that Omni sells more: experiments and holdouts (who gets what), the exposures
ledger (what was served or held back), attribution, learned take rates and the report."""
