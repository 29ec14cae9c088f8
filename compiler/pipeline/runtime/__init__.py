"""The files each pipeline step's version folder holds: steps.py (what the steps do, also run by the build's
proof) and model.py (the Python-backend model around it). Copied, never imported by tritonserver from here."""
