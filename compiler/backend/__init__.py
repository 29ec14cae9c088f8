"""What tritonserver's PyTorch backend does, known in one place.

``nvidia/`` builds NVIDIA's C++ PyTorch backend from its pinned sources (server/ lays it out for tritonserver);
``pytorch/`` holds the rules that backend applies, in Python: how inputs bind to forward() (``binding_rules.py``)
and how a package's call spec names its tensors (``pt2_names.py``), which export, check and verify share so that
what the build proves is what the server does.
"""
