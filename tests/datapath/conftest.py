import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Harness  # noqa: E402


@pytest.fixture(scope="session")
def dp():
    h = Harness()
    yield h
    h.close()
