"""The bias check: language measures of drafts (and, later, ratings across groups)."""
