"""The documentation's runnable commands that profile the real model (README.md's quick
start, the troubleshooting guide), run against the real tool page by page as
tests/unit/test_docs.py runs the others (the parser and runner: tests/runnable_docs.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from runnable_docs import MEASURING_PAGES, check_page, page_id

# Warm profiles in this virtualenv, no statistic: beside the rest of the e2e tier.
pytestmark = pytest.mark.alongside


@pytest.mark.parametrize("page", MEASURING_PAGES, ids=page_id)
def test_runnable_commands_that_measure(page: Path, tmp_path):
    check_page(page, tmp_path)
