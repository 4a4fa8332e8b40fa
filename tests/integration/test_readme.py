"""The README, walked as a new tester would.

Every command it shows either runs here (the quick start's proxy, a capture and its offline
audit, the bug-report lookup) or is checked against what exists: the program in the venv,
the files it names, mitmproxy's own flags and every option it sets (the addon's included),
the modules and scripts it runs and their flags. The demo lab (tests/e2e/test_demo_lab.py)
and the bench smoke run have tests of their own.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import options
from mitmproxy.test import taddons
from mitmproxy.tools import cmdline
from mitmproxy.tools.dump import DumpMaster
from mitmproxy.tools.web.webaddons import WebAddon

from mitmcors.combined import Cors
from support.servers import ADDON_PATH, PLAIN, REPO_ROOT, ApiServer, MitmdumpProcess, free_port
from support.wire import ORIGIN, PREFLIGHT, send, values

pytestmark = pytest.mark.integration

README = (REPO_ROOT / "README.md").read_text()
VENV_BIN = Path(sys.executable).parent
PROXIES = {"mitmdump": cmdline.mitmdump, "mitmweb": cmdline.mitmweb, "mitmproxy": cmdline.mitmproxy}
PLACEHOLDER = "..."  # "the same options" in a sentence's command


def _blocks() -> Iterator[str]:
    """Shell lines of the fenced sh and console blocks (indented ones too), continuations joined;
    of a console block only the lines typed at the prompt."""
    for language, body in re.findall(r"^ *```(sh|console)\n(.*?)^ *```", README, re.MULTILINE | re.DOTALL):
        for line in re.sub(r"\\\n\s*", "", body).splitlines():
            line = line.strip()
            if language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if line:
                yield line.split("  #")[0].strip()


def _inline() -> Iterator[str]:
    """Commands quoted in the text: code spans that start with a venv program."""
    for span in re.findall(r"`(\.venv/bin/[^`]+)`", README):
        words = span.split()
        if len(words) > 1:  # a program named in a sentence is no command
            yield " ".join(words)


def _commands() -> list[list[str]]:
    """Every command the README shows, as words, one per command of a && chain or a pipe,
    environment assignments in front dropped."""
    commands = []
    for line in [*_blocks(), *_inline()]:
        for part in re.split(r"&&|\|", line):
            words = [word for word in shlex.split(part) if word != PLACEHOLDER]
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words.pop(0)
            if words:
                commands.append(words)
    return commands


COMMANDS = _commands()
VENV_COMMANDS = [words for words in COMMANDS if words[0].startswith(".venv/bin/")]


def _id(words: list[str]) -> str:
    return " ".join(words)[:80]


def _all_options() -> options.Options:
    """Every option mitmdump has (its addons', the script's) and mitmweb's, as mitmproxy's
    own start-up gathers them before it parses a command line."""

    async def gathered() -> options.Options:
        opts = options.Options()
        DumpMaster(opts, with_termlog=False, with_dumper=False).addons.add(Cors(), WebAddon())
        return opts

    return asyncio.run(gathered())


OPTIONS = _all_options()


def test_the_readme_shows_the_commands_a_tester_types():
    programs = {Path(words[0]).name for words in VENV_COMMANDS}
    assert {"mitmdump", "mitmweb", "mitmproxy", "python", "pip", "mitmcors-explain", "mitmcors-lab"} <= programs
    assert len(VENV_COMMANDS) >= 15


@pytest.mark.parametrize("words", [w for w in COMMANDS if Path(w[0]).name in {*PROXIES, "python", "pip", "mitmcors-explain"}], ids=_id)
def test_every_command_runs_the_venv_program(words):
    """One convention: a bare `mitmdump` or `python` may be another install, or none."""
    assert words[0].startswith(".venv/bin/") or words[:3] == ["python3", "-m", "venv"], words


@pytest.mark.parametrize("words", VENV_COMMANDS, ids=_id)
def test_every_venv_program_exists(words):
    program = Path(words[0]).name
    if program == "pip":
        return  # the venv's own, made by the command before it
    assert (VENV_BIN / program).is_file(), f"{program} is not installed with the package"


PROXY_COMMANDS = [words for words in VENV_COMMANDS if Path(words[0]).name in PROXIES]


@pytest.mark.parametrize("words", PROXY_COMMANDS, ids=_id)
def test_every_proxy_command_parses_names_what_exists_and_listens_on_loopback(words):
    parser = PROXIES[Path(words[0]).name](OPTIONS)
    parsed = parser.parse_args(words[1:])
    for script in parsed.scripts or ():
        assert (REPO_ROOT / script).is_file(), script
    for setting in parsed.setoptions or ():
        name, _, value = setting.partition("=")
        assert name in OPTIONS, f"--set {name}: no such option"
        if name == "cors_rules":
            assert (REPO_ROOT / value).is_file(), value
    offline = parsed.server is False  # -n: reads a capture, listens nowhere
    assert offline or parsed.listen_host == "127.0.0.1", "every proxy in the README listens on loopback only"


@pytest.mark.parametrize("words", [w for w in VENV_COMMANDS if Path(w[0]).name == "python"], ids=_id)
def test_every_python_command_runs_something_that_exists(words):
    arguments = words[1:]
    if arguments[0] == "-m":
        assert importlib.util.find_spec(arguments[1]) is not None, arguments[1]
        return
    script = REPO_ROOT / arguments[0]
    assert script.is_file(), script
    flags = [word for word in arguments[1:] if word.startswith("--")]
    usage = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60).stdout
    assert all(flag in usage for flag in flags), (flags, usage)


def test_every_option_the_text_sets_exists():
    names = set(re.findall(r"--set (\w+)=", README))
    assert {"cors_rules", "cors_report", "ssl_insecure", "web_columns"} <= names
    assert names <= set(OPTIONS.keys()), names - set(OPTIONS.keys())


def test_every_file_the_text_links_exists():
    linked = re.findall(r"\]\(((?!https?:|#)[^)]+)\)", README)
    assert linked and all((REPO_ROOT / path).exists() for path in linked), linked


def test_the_addon_commands_the_text_names_exist():
    with taddons.context(Cors()) as tctx:
        commands = tctx.master.commands.commands
    named = set(re.findall(r"`:?(cors\.\w+)", README))
    assert named == {"cors.reload", "cors.explain"} and named <= set(commands)


CHROMIUM_LINES = [line for line in _blocks() if line.startswith("chromium ")]


@pytest.mark.parametrize("line", CHROMIUM_LINES)
def test_each_chromium_command_is_one_quoted_line_the_shell_reads_as_written(line):
    assert "'--proxy-bypass-list=<-loopback>'" in line
    words = shlex.split(line)
    assert "--proxy-bypass-list=<-loopback>" in words and "--proxy-server=http://127.0.0.1:8080" in words
    assert any(word.startswith("--user-data-dir=") for word in words)
    assert "--no-sandbox" in README, "root needs it, and the README says so"


def test_the_readme_shows_the_lab_and_the_browser_commands():
    assert len(CHROMIUM_LINES) == 2 and [".venv/bin/mitmcors-lab"] in COMMANDS


def test_the_lookup_prints_what_the_readme_shows():
    block = re.search(r"```console\n\$ (.*?)\n(.*?)```", README, re.DOTALL)
    assert block is not None
    words = shlex.split(block.group(1))
    printed = subprocess.run([str(VENV_BIN / Path(words[0]).name), *words[1:]], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0 and printed.stdout == block.group(2)


QUICK_START = r"^\S+ -s cors_addon\.py --listen-host 127\.0\.0\.1 --set cors_rules=rules/bypass-all\.yaml$"


def _readme_command(pattern: str) -> list[str]:
    (words,) = [words for words in PROXY_COMMANDS if re.search(pattern, " ".join(words))]
    return [str(VENV_BIN / Path(words[0]).name), *words[1:]]


def test_the_quick_start_proxy_bypasses_a_cors_less_backend():
    command = _readme_command(QUICK_START)
    port = free_port()
    with ApiServer() as backend:
        proxy = MitmdumpProcess([*command, "-p", str(port)], port)  # the README's port, 8080, may be taken
        try:
            proxy.wait_until_listening(15)
            status, headers, _ = send(proxy, "OPTIONS", backend.url(PLAIN + "readme"), PREFLIGHT)
        finally:
            proxy.stop()
    assert status == 204 and values(headers, "Access-Control-Allow-Origin") == [ORIGIN], proxy.output()


def test_a_capture_made_as_shown_is_audited_as_shown(tmp_path):
    (tmp_path / ADDON_PATH.name).symlink_to(ADDON_PATH)  # the commands run where cors_addon.py is
    capture_command = _readme_command(r" -w capture\.flows$")
    port = free_port()
    with ApiServer() as backend:
        proxy = MitmdumpProcess([*capture_command, "-p", str(port)], port, cwd=tmp_path)
        try:
            proxy.wait_until_listening(15)
            send(proxy, "GET", backend.url(PLAIN + "audited"), {"Origin": ORIGIN})
        finally:
            proxy.stop()
    audit = subprocess.run(_readme_command(r"-nr capture\.flows"), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert '"reason": "MissingAllowOriginHeader"' in (tmp_path / "audit.jsonl").read_text()


def test_a_connection_to_the_quick_start_port_is_refused_beyond_loopback():
    """What --listen-host 127.0.0.1 buys: nothing but loopback reaches the proxy."""
    command = _readme_command(QUICK_START)
    port = free_port()
    proxy = MitmdumpProcess([*command, "-p", str(port)], port)
    try:
        proxy.wait_until_listening(15)
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
    finally:
        proxy.stop()
    assert f"127.0.0.1:{port}" in listening and f"0.0.0.0:{port}" not in listening and f"*:{port}" not in listening
