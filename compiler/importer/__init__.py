"""`compiler import REPO`: a models.yaml that builds an existing Triton model repository again (importer/repository.py)."""
