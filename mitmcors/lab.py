"""The demo lab: ``mitmcors-lab`` (or ``python -m mitmcors.lab``) serves, on 127.0.0.1, a page
and two APIs on ports of their own (one with no CORS at all, one with a correct setup) and
prints the proxy and Chromium commands to put in between.

A tester new to the addon sees every kind of CORS failure it handles, live, in minutes: the
page has a button per kind of request and per API, and shows what the browser let it see.
The servers are the ones the tests run (``mitmcors.labservers``). No mitmproxy import: the
proxy is a process of its own, started with the printed command.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

from mitmcors.labservers import GOOD_CORS, LOOPBACK, PLAIN, ApiServer, BackgroundServer, PageServer

REPOSITORY = Path(__file__).resolve().parents[1]
ADDON = REPOSITORY / "cors_addon.py"
BYPASS_RULES = REPOSITORY / "rules" / "bypass-all.yaml"
BREAK_RULES = REPOSITORY / "rules" / "double-allow-origin.yaml"
BREAK_SCENARIO = "multiple-allow-origin-values"
"""The scenario BREAK_RULES breaks every flow with (a test holds the two together)."""
CHROMIUM_PROFILE = "/tmp/mitmcors-lab-chromium"
PROXY_BYPASS_LIST = "<-loopback>"
"""Chromium sends loopback through a proxy only when told to remove this implicit bypass."""
SESSION_COOKIE = ("Set-Cookie", "lab_session=demo; Path=/; SameSite=Lax")
"""Host-only for 127.0.0.1: cookies ignore ports, so both APIs are the page's own site."""
CONFIG_PLACEHOLDER = "/*LAB_CONFIG*/"

_Server = TypeVar("_Server", bound=BackgroundServer)


class LabError(Exception):
    """A reason the lab cannot start, in one line."""


@dataclass(frozen=True)
class LabUrls:
    """Where the lab's page and APIs are; the APIs' URLs include their behaviour's prefix."""

    page: str
    plain_api: str
    cors_api: str


def lab_page(plain_api: str, cors_api: str) -> bytes:
    """The page, told where the two APIs are."""
    template = resources.files("mitmcors").joinpath("lab.html").read_text(encoding="utf-8")
    config = json.dumps({"plain": plain_api, "cors": cors_api})
    return template.replace(CONFIG_PLACEHOLDER, config).encode()


def listening(make: Callable[[int], _Server], port: int, role: str, option: str) -> _Server:
    """A server bound to port, or a LabError naming the option that picks another port."""
    try:
        return make(port)
    except OSError as error:
        problem = "is busy" if error.errno == errno.EADDRINUSE else f"cannot be used ({error.strerror})"
        raise LabError(f"port {port} on {LOOPBACK} for {role} {problem}: choose another with {option}") from None


@contextmanager
def running_lab(page_port: int, api_port: int, cors_api_port: int) -> Iterator[LabUrls]:
    """Serve the page and both APIs until the block ends; all three are bound before any
    starts, so a busy port leaves nothing running."""
    with ExitStack() as stack:
        plain_api = listening(lambda port: ApiServer(port, only=PLAIN), api_port, "the API without CORS",
                              "--api-port")
        stack.callback(plain_api.stop)
        cors_api = listening(lambda port: ApiServer(port, only=GOOD_CORS), cors_api_port,
                             "the API with correct CORS", "--cors-api-port")
        stack.callback(cors_api.stop)
        page = lab_page(plain_api.url(PLAIN), cors_api.url(GOOD_CORS))
        page_server = listening(lambda port: PageServer(lambda query: page, port, [SESSION_COOKIE]),
                                page_port, "the page", "--page-port")
        stack.callback(page_server.stop)
        for server in (plain_api, cors_api, page_server):
            server.start()
        yield LabUrls(page_server.url("/"), plain_api.url(PLAIN), cors_api.url(GOOD_CORS))


def shown(path: Path, cwd: Path) -> str:
    """A path as a tester types it: relative when under the working directory (the clone)."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def mitmdump_path(cwd: Path) -> str:
    """The mitmdump installed beside this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "mitmdump"
    return shown(beside, cwd) if beside.is_file() else "mitmdump"


def proxy_command(proxy_port: int, rule_file: Path | None, cwd: Path) -> str:
    """mitmdump with the addon, on loopback only, with rule_file (None: no rules)."""
    command = [mitmdump_path(cwd), "-s", shown(ADDON, cwd), "--listen-host", LOOPBACK, "-p", str(proxy_port)]
    if rule_file is not None:
        command += ["--set", f"cors_rules={shown(rule_file, cwd)}"]
    return shlex.join(command)


def chromium_command(proxy_port: int, page_url: str, as_root: bool) -> str:
    """Chromium in a fresh profile, loopback included in what it proxies, opening the page;
    quoted for a POSIX shell (``<`` would be a redirection)."""
    command = ["chromium", *(["--no-sandbox"] if as_root else []), f"--user-data-dir={CHROMIUM_PROFILE}",
               "--no-first-run", f"--proxy-server=http://{LOOPBACK}:{proxy_port}",
               f"--proxy-bypass-list={PROXY_BYPASS_LIST}", page_url]
    return shlex.join(command)


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def instructions(urls: LabUrls, proxy_port: int, cwd: Path, as_root: bool) -> str:
    """What the lab prints: where it serves, and the commands to run next, in order."""
    sandbox = ("   --no-sandbox: you run as root, and as root Chromium will not start without it;\n"
               "   leave it out as another user.\n") if as_root else ""
    missing = [str(path) for path in (ADDON, BYPASS_RULES, BREAK_RULES) if not path.is_file()]
    clone = f"   (not found here, take them from a clone of mitmcors: {', '.join(missing)})\n" if missing else ""
    return (
        f"mitmcors demo lab, on loopback only (Ctrl-C stops it):\n"
        f"  page                   {urls.page}\n"
        f"  API without CORS       {urls.plain_api}\n"
        f"  API with correct CORS  {urls.cors_api}\n"
        f"\n"
        f"1. Start the proxy in another terminal, one of:\n"
        f"   no rules (the proxy changes nothing and logs why each call is blocked):\n"
        f"     {proxy_command(proxy_port, None, cwd)}\n"
        f"   bypass every CORS failure:\n"
        f"     {proxy_command(proxy_port, BYPASS_RULES, cwd)}\n"
        f"   reproduce one named failure ({BREAK_SCENARIO}):\n"
        f"     {proxy_command(proxy_port, BREAK_RULES, cwd)}\n"
        f"{clone}"
        f"   To switch, stop it (Ctrl-C) and start another; Chromium can stay open.\n"
        f"\n"
        f"2. Start Chromium through the proxy, in a third terminal:\n"
        f"     {chromium_command(proxy_port, urls.page, as_root)}\n"
        f"{sandbox}"
        f"   {PROXY_BYPASS_LIST} makes Chromium proxy 127.0.0.1 too (by default it never does); the\n"
        f"   quotes keep the shell from reading < as a redirection. The fresh profile\n"
        f"   (--user-data-dir) keeps an open Chromium from ignoring the flags.\n"
        f"\n"
        f"3. Click \"Run all\" or one button; open DevTools (F12, Console) for the browser's reason,\n"
        f"   and read the proxy's log line for each call.\n"
    )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mitmcors-lab",
        description="Serve, on 127.0.0.1, a page and two APIs (one with no CORS at all, one with a correct "
                    "setup), and print the proxy and Chromium commands to put in between.")
    parser.add_argument("--page-port", type=int, default=8000, metavar="PORT", help="the page's port (default 8000)")
    parser.add_argument("--api-port", type=int, default=8001, metavar="PORT",
                        help="the API without CORS (default 8001)")
    parser.add_argument("--cors-api-port", type=int, default=8002, metavar="PORT",
                        help="the API with correct CORS (default 8002)")
    parser.add_argument("--proxy-port", type=int, default=8080, metavar="PORT",
                        help="the proxy's port in the printed commands (default 8080)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C: 0 then, 1 (and one line on stderr) when a port cannot be used."""
    args = parse_arguments(argv)
    try:
        with running_lab(args.page_port, args.api_port, args.cors_api_port) as urls:
            print(instructions(urls, args.proxy_port, Path.cwd(), running_as_root()), flush=True)
            threading.Event().wait()
    except LabError as error:
        print(f"mitmcors-lab: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
