"""The WebKit driver's teardown: MiniBrowser's web and network processes outlive it by a
moment, writing into the profile, so the profile is deleted only once no process uses it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import webkit

SLEEPER = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def helper(profile: Path) -> subprocess.Popen[bytes]:
    """A process with the profile in its environment, as MiniBrowser's helpers have it."""
    return subprocess.Popen([sys.executable, "-c", SLEEPER], env={**os.environ, "XDG_CACHE_HOME": str(profile / "cache")})


def test_a_process_uses_the_profile_its_environment_names_until_it_exits(tmp_path: Path) -> None:
    process = helper(tmp_path)
    try:
        assert process.pid in webkit._users(str(tmp_path))
        assert process.pid not in webkit._users(str(tmp_path / "another"))
    finally:
        process.kill()
        process.wait()
    assert process.pid not in webkit._users(str(tmp_path))


def test_teardown_kills_a_helper_that_lingers_and_returns_once_it_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webkit, "HELPERS_EXIT_TIMEOUT", 0.3)
    process = helper(tmp_path)
    started = time.monotonic()
    webkit._await_exit(str(tmp_path))
    assert time.monotonic() - started < 3
    assert process.wait(timeout=5) == -signal.SIGKILL


def test_teardown_returns_at_once_when_no_process_uses_the_profile(tmp_path: Path) -> None:
    started = time.monotonic()
    webkit._await_exit(str(tmp_path))
    assert time.monotonic() - started < 1
