"""Run a child process under which file modes hold, even when the tests run as root."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["without_root_powers"]


def without_root_powers() -> list[str]:
    """A command prefix: root loses the power to ignore file modes (util-linux's setpriv); [] for others."""
    if os.getuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without util-linux's setpriv to drop the power to ignore file modes")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]
