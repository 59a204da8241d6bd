from __future__ import annotations

import pytest
from prom_stub import PromStub


@pytest.fixture
def prom():
    """A Prometheus stub on 127.0.0.1 (see prom_stub.py)."""
    stub = PromStub()
    yield stub
    stub.close()
