"""The output model repository: fingerprints, a lock, and all-or-nothing replacement."""
