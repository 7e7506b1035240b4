"""Document intelligence: page text with provenance, the invoice field schema, rule extraction."""
