"""Software-defined assets: what exists, per business date, and which transform makes it."""
