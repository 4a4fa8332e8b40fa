"""The demo lab's command line: what it prints is what a tester can paste as it is, and a
port it cannot use is one line naming the option that picks another."""

from __future__ import annotations

import json
import os
import shlex
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from mitmcors.lab import BREAK_RULES, BREAK_SCENARIO, LabUrls, chromium_command, instructions
from mitmcors.scenarios import SCENARIOS
from support.lab import LabProcess, run_lab, running_lab
from support.servers import REPO_ROOT

pytestmark = pytest.mark.integration

PAGE_URL = "http://127.0.0.1:8000/"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabProcess]:
    with running_lab() as lab:
        yield lab


def test_the_chromium_line_is_one_shell_word_per_flag_with_the_bypass_list_quoted(lab: LabProcess) -> None:
    line = lab.chromium_command()
    assert "'--proxy-bypass-list=<-loopback>'" in line
    as_root = ["--no-sandbox"] if os.geteuid() == 0 else []
    assert shlex.split(line) == [
        "chromium", *as_root, "--user-data-dir=/tmp/mitmcors-lab-chromium", "--no-first-run",
        f"--proxy-server=http://127.0.0.1:{lab.proxy_port}", "--proxy-bypass-list=<-loopback>", lab.page_url,
    ]


@pytest.mark.parametrize("as_root", [True, False])
def test_no_sandbox_comes_with_its_reason_only_as_root(as_root: bool) -> None:
    assert ("--no-sandbox" in shlex.split(chromium_command(8080, PAGE_URL, as_root))) is as_root
    text = instructions(LabUrls(PAGE_URL, "http://127.0.0.1:8001/plain/", "http://127.0.0.1:8002/goodcors/"),
                        8080, REPO_ROOT, as_root)
    assert ("--no-sandbox: you run as root" in text) is as_root


def test_the_proxy_commands_name_the_addon_and_rule_files_relative_to_the_repository(lab: LabProcess) -> None:
    commands = [shlex.split(line) for line in lab.proxy_commands()]
    assert [command[1:7] for command in commands] == [
        ["-s", "cors_addon.py", "--listen-host", "127.0.0.1", "-p", str(lab.proxy_port)]] * 3
    assert [command[7:] for command in commands] == [
        [], ["--set", "cors_rules=rules/bypass-all.yaml"], ["--set", "cors_rules=rules/double-allow-origin.yaml"]]
    for command in commands:
        assert (REPO_ROOT / command[0]).is_file(), command[0]
        assert (REPO_ROOT / command[2]).is_file()
        assert all((REPO_ROOT / word.removeprefix("cors_rules=")).is_file() for word in command[8:])


def test_the_break_example_breaks_every_flow_with_the_scenario_announced() -> None:
    rules = yaml.safe_load(BREAK_RULES.read_text(encoding="utf-8"))["rules"]
    assert [set(rule) for rule in rules] == [{"name", "break"}]
    assert rules[0]["break"] == BREAK_SCENARIO and BREAK_SCENARIO in SCENARIOS


def test_the_page_sets_the_cookie_and_knows_both_apis(lab: LabProcess) -> None:
    with urllib.request.urlopen(lab.page_url) as response:
        cookie = response.headers["Set-Cookie"]
        page = response.read().decode()
    assert cookie == "lab_session=demo; Path=/; SameSite=Lax"
    config = json.dumps({"plain": f"http://127.0.0.1:{lab.api_port}/plain/",
                         "cors": f"http://127.0.0.1:{lab.cors_api_port}/goodcors/"})
    assert f"const LAB = {config};" in page


def test_each_api_serves_only_its_own_behaviour(lab: LabProcess) -> None:
    """The API without CORS has none on any path: the other API's prefix is not found there."""
    for port, other in ((lab.api_port, "goodcors"), (lab.cors_api_port, "plain")):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/{other}/x", headers={"Origin": "http://a.test"})
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request)
        assert raised.value.code == 404 and "Access-Control-Allow-Origin" not in raised.value.headers


@pytest.mark.parametrize("option, role", [("--page-port", "the page"), ("--api-port", "the API without CORS"),
                                          ("--cors-api-port", "the API with correct CORS")])
def test_a_busy_port_is_one_line_naming_the_option_that_picks_another(option: str, role: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        others = {"--page-port": "0", "--api-port": "0", "--cors-api-port": "0", option: str(port)}
        process = run_lab(*[word for pair in others.items() for word in pair])
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 1
    assert output == f"mitmcors-lab: port {port} on 127.0.0.1 for {role} is busy: choose another with {option}\n"
