"""The demo lab as a tester runs it: ``python -m mitmcors.lab`` in a subprocess, from the
repository, and the commands it prints, read back off its output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from support.drivers import OutputLines, stop
from support.servers import REPO_ROOT, STARTUP_TIMEOUT, free_port

LAST_LINE = re.compile(r"^3\. Click")
"""The last instruction the lab prints: everything is printed, and it serves."""
PROXY_LINE = re.compile(r"^\s+\S*mitmdump -s ")


def run_lab(*arguments: str) -> subprocess.Popen[str]:
    """Start the lab as the README says, with this interpreter (the venv's), from the
    repository (so it prints paths relative to it), this checkout's package first on the
    path whatever the venv has installed."""
    return subprocess.Popen(
        [sys.executable, "-m", "mitmcors.lab", *arguments],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


@dataclass
class LabProcess:
    """A running lab: its ports and what it printed."""

    page_port: int
    api_port: int
    cors_api_port: int
    proxy_port: int
    output: OutputLines

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.page_port}/"

    def proxy_commands(self) -> list[str]:
        """The three printed mitmdump lines: no rules, bypass-all, the break example."""
        return [line.strip() for line in self.output.lines() if PROXY_LINE.match(line)]

    def chromium_command(self) -> str:
        [line] = [line.strip() for line in self.output.lines() if line.strip().startswith("chromium ")]
        return line


@contextmanager
def running_lab() -> Iterator[LabProcess]:
    """The lab on three free ports, its printed commands naming a free proxy port."""
    ports = [free_port() for _ in range(4)]
    process = run_lab("--page-port", str(ports[0]), "--api-port", str(ports[1]),
                      "--cors-api-port", str(ports[2]), "--proxy-port", str(ports[3]))
    assert process.stdout is not None
    lab = LabProcess(*ports, output=OutputLines(process.stdout))
    try:
        if lab.output.wait_for(LAST_LINE, STARTUP_TIMEOUT) is None:
            pytest.fail(f"the lab did not start: {' '.join(process.args)}\n" + "\n".join(lab.output.lines()))
        yield lab
    finally:
        stop(process)
