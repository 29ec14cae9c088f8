"""Runtime backends that tritonserver loads: one folder per backend, each a Python-based backend (``model.py``).

``server/`` ships every ``<name>/model.py`` folder here into tritonserver's backend directory; the compiler's
export, check and verify import the rules these backends apply (``pytorch/binding_rules.py``) so that what the
build proves is what the server does.
"""
