from __future__ import annotations

import pytest

from tests.support.testdirs import make_test_dir


@pytest.fixture
def calc_test(tmp_path):
    """A small real test: T0 and T1, two subtests each, real command checks."""
    return make_test_dir(tmp_path / "tests", "calc", tiers=("T0", "T1"), subtests=2)
