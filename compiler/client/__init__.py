"""Talk to a served model or pipeline as a user would: `infer` (raw text and images, .npy files, or random
inputs shaped by the served config), and the requests verify, soak and bench send."""
