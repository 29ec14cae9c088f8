"""Talk to a served model as a user would: `infer` (and, later, load generators)."""
