"""Opening a tender's deposits after its deadline (rule 7)."""
