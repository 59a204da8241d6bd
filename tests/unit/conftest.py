"""Make ``ansible_collections.veritas.chaos`` importable (``make collection-link`` creates the link)."""

from __future__ import annotations

import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_COLLECTIONS = os.path.join(_REPO, ".collections")
if (
    os.path.isdir(os.path.join(_COLLECTIONS, "ansible_collections", "veritas", "chaos"))
    and _COLLECTIONS not in sys.path
):
    sys.path.insert(0, _COLLECTIONS)
