"""The benchmark's quick run, end to end, so that it never rots: every configuration runs
through a real mitmdump and every section of the results is written.

No timing is asserted: a run this short on a shared machine measures nothing. About
20 seconds on two cores, most of it mitmdump processes starting.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300.0  # seconds: a hung run fails the test instead of hanging it


def bench(*args: str) -> str:
    """What ``bench/run.py`` printed; it must succeed."""
    command = [sys.executable, str(REPO / "bench" / "run.py"), *args]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    return run.stdout


@pytest.fixture(scope="module")
def results_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The results of one ``bench/run.py --quick``, and what it printed."""
    output = tmp_path_factory.mktemp("bench") / "results.json"
    return output, bench("--quick", "--output", str(output))


@pytest.fixture
def quick_run(results_file: tuple[Path, str]) -> tuple[dict[str, Any], str]:
    output, printed = results_file
    return json.loads(output.read_text()), printed


def test_quick_run_writes_every_section(quick_run: tuple[dict[str, Any], str]) -> None:
    results, _ = quick_run
    assert set(results) == {"environment", "throughput", "decision", "load", "memory", "reload", "elapsed_seconds"}
    assert results["environment"]["quick"] is True
    assert {"mitmproxy", "python", "cores", "commit", "settings"} <= set(results["environment"])


def test_quick_run_measures_the_mitmdumps_on_a_core_of_their_own(quick_run: tuple[dict[str, Any], str]) -> None:
    """Two mitmdumps measured at once share one core, and the clients and the backend stay off it."""
    environment = quick_run[0]["environment"]
    proxies, clients = environment["proxy_cores"], environment["client_cores"]
    assert len(proxies) == 1
    assert not set(proxies) & set(clients) if len(os.sched_getaffinity(0)) > 1 else proxies == clients


def test_quick_run_measures_every_configuration_against_its_baseline(quick_run: tuple[dict[str, Any], str]) -> None:
    rows = {row["configuration"]: row for row in quick_run[0]["throughput"]}
    assert {row["requests"] for row in rows.values()} == {"cors", "plain", "preflight"}
    assert {row["mode"] for row in rows.values()} == {"regular", "reverse"}
    assert any("--modify-headers" in row["command"] for row in rows.values())
    assert any(row["command"][-1].endswith("noop_addon.py") for row in rows.values()), "the floor is measured too"
    least = [row for row in rows.values() if row["command"][-1].endswith("least_addon.py")]
    assert [row["baseline"] for row in least] == ["bare"], "the bound for any script is measured too, against bare"
    for row in rows.values():
        assert row["median_requests_per_second"] > 0, row
        assert row["baseline"] is None or row["baseline"] in rows
        assert (row["ratio"] is None) == (row["baseline"] is None), row
        assert len(row["round_ratios"]) == (0 if row["baseline"] is None else 1), row  # --quick: one round
        assert (row["met"] is None) == (row["target"] is None), row
    assert sum(row["target"] is not None for row in rows.values()) == 6
    assert rows["a second bare mitmdump"]["baseline"] == "bare", "the method's own error is measured too"


def test_quick_run_reports_decision_load_memory_and_reload(quick_run: tuple[dict[str, Any], str]) -> None:
    results, printed = quick_run
    counts = results["environment"]["settings"]["decision_rules"]
    assert [entry["rules"] for entry in results["decision"]] == counts
    assert [entry["rules"] for entry in results["load"]] == counts
    for entry in results["decision"]:
        assert 0 < entry["decision_microseconds"] <= entry["decision_median_microseconds"], entry
        assert 0 < entry["with_log_microseconds"] <= entry["with_log_median_microseconds"], entry
    assert max(entry["files"] for entry in results["load"]) > 1  # the largest count spans several files
    assert [entry["mitmdump"] for entry in results["memory"]] == ["bare", "observe", "small", "large", "huge"]
    reload = results["reload"]
    assert len(reload["reload_latency_seconds"]) == reload["reloads"] >= 1
    assert reload["longest_gap_ms"] > 0 and reload["longest_gap_without_reload_ms"] > 0
    assert "targets met" in printed


def test_a_results_file_prints_again_as_markdown_tables(results_file: tuple[Path, str]) -> None:
    printed = bench("--report", str(results_file[0]), "--markdown")
    assert "| configuration | req/s | ratio |" in printed
    assert "| rules | decision | (median) | with log line | load | mitmdump RSS over bare |" in printed


def test_the_hostile_input_benchmark_runs_its_quick_parts():
    """bench/hostile_input.py's glob and everyday-match parts, which once broke unseen."""
    command = [sys.executable, str(REPO / "bench" / "hostile_input.py"), "globs", "common"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 4 + 8 and all(line.endswith((" ms", " ns")) for line in lines), run.stdout


def in_proxy(*arguments: str) -> list[str]:
    """What ``bench/in_proxy.py`` printed, a line a measurement; it must succeed."""
    run = subprocess.run([sys.executable, str(REPO / "bench" / "in_proxy.py"), *arguments],
                         capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def assert_timed(lines: list[str], measured: str, settings: list[str]) -> None:
    """Each line: its request kind and setting, what the measured hooks take beyond the
    do-nothing script's, and where the two ran at once, their whole CPU times."""
    assert [" ".join(line.split(":")[0].split()) for line in lines] == settings, lines
    for line in lines:
        beyond = float(line.split(f"{measured} take ")[1].split()[0])
        assert beyond > 0 and "responseheaders" in line, line
        assert ("outside the hooks" in line) == ("at once" in line), line


def test_the_in_proxy_timing_runs_through_a_real_mitmdump():
    """bench/in_proxy.py: the addon's hooks and the do-nothing script's timed inside
    mitmdump, alone and at once, for both kinds of request."""
    lines = in_proxy("--seconds", "0.3")
    assert_timed(lines, "the addon's hooks", ["cors alone", "cors at once", "plain alone", "plain at once"])


def test_the_in_proxy_timing_measures_a_busy_script_in_the_addons_place():
    lines = in_proxy("--seconds", "0.3", "--busy", "6")
    assert_timed(lines, "the hooks of a script busy 6 µs a flow", ["cors alone", "cors at once"])


def test_the_in_proxy_timing_measures_the_least_script_in_the_addons_place():
    lines = in_proxy("--seconds", "0.3", "--least")
    assert_timed(lines, "the least script's hooks", ["cors alone", "cors at once", "plain alone", "plain at once"])


@pytest.mark.parametrize("arguments, refusal", [
    (["--seconds", "0"], "must be positive"),
    (["--busy", "-1"], "must be positive"),
    (["--busy", "6", "--least"], "not allowed with argument"),
])
def test_the_in_proxy_timing_refuses_a_bad_command_line(arguments: list[str], refusal: str) -> None:
    run = subprocess.run([sys.executable, str(REPO / "bench" / "in_proxy.py"), *arguments],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.returncode == 2 and refusal in run.stderr


@pytest.mark.parametrize("configuration", ["rules", "empty"])
def test_the_dispatch_benchmark_runs_one_configuration(configuration):
    """bench/dispatch.py, through a DumpMaster's own dispatch: with the addon and its
    rules, and with the empty script whose module names every event."""
    command = [sys.executable, str(REPO / "bench" / "dispatch.py"), "--only", configuration]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    assert run.returncode == 0 and "error in script" not in run.stderr, run.stderr
    assert run.stdout.startswith(f"{configuration} ") and "µs a flow" in run.stdout, run.stdout


def test_the_profile_puts_a_response_in_parts_and_none_of_bare_in_the_addon():
    """bench/profile.py: bare, the do-nothing script and the addon sampled by py-spy at once;
    each row's parts add up to its CPU time per response, and bare runs no script code."""
    command = [sys.executable, str(REPO / "bench" / "profile.py"), "--seconds", "2"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    assert run.returncode == 0, run.stderr
    header, *rows = run.stdout.splitlines()
    assert "addon's code" in header and "mitmproxy's addon dispatch" in header, run.stdout
    figures = {row[:32].strip(): [int(word) for word in row[32:].split() if word.isdigit()] for row in rows}
    assert list(figures) == ["bare", "a script whose hooks do nothing", "addon, 1,000 rules"], run.stdout
    for rate, cpu, *parts in figures.values():
        assert rate > 0 and abs(sum(parts) - cpu) <= len(parts), run.stdout  # each part rounded
    assert figures["bare"][2] == 0, run.stdout


@pytest.mark.parametrize(("arguments", "refusal"), [
    (["--requests", "0"], "--requests must be at least 1"),
    (["--last-level", "1024"], "--last-level needs --simulate"),
    (["--simulate", "--last-level", "1000"], "--last-level must be a power of two"),
])
def test_the_instruction_count_refuses_a_bad_command_line_at_once(arguments: list[str], refusal: str) -> None:
    command = [sys.executable, str(REPO / "bench" / "instructions.py"), *arguments]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    assert run.returncode == 2 and refusal in run.stderr and not run.stdout, run.stderr


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (apt-get install valgrind; CI installs it)")
def test_the_instruction_count_runs_each_mitmdump_under_callgrind():
    """bench/instructions.py: bare, the do-nothing script and the addon, each counted by
    callgrind for a few requests, caches simulated with an L2-sized last level; bare is
    the baseline of the ratios."""
    command = [sys.executable, str(REPO / "bench" / "instructions.py"), "--requests", "3", "--simulate", "--last-level", "1024"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    assert run.returncode == 0, run.stderr
    header, *rows = run.stdout.splitlines()
    assert [part.strip() for part in header.split("  ") if part.strip()] == [
        "a response", "instructions", "L1 instruction misses", "L1 data misses", "last-level misses", "mispredicted branches",
        "bare over this",
    ], run.stdout
    assert [row[:32].strip() for row in rows] == ["bare", "a script whose hooks do nothing", "addon, 1,000 rules"], run.stdout
    counts = [[int(count.replace(",", "")) for count in row[32:].split()[:-1]] for row in rows]
    assert all(len(counted) == 5 and min(counted) > 0 for counted in counts), run.stdout
    assert min(counted[0] for counted in counts) > 100_000, run.stdout  # mitmproxy's own instructions on a response, at least
    assert rows[0].split()[-1] == "1.000", run.stdout


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (apt-get install valgrind; CI installs it)")
def test_the_instruction_count_counts_gets_without_origin_on_request():
    """With --no-origin the three count GETs without Origin, which the addon leaves as they
    came (the script itself stops if it added Access-Control-Allow-Origin)."""
    command = [sys.executable, str(REPO / "bench" / "instructions.py"), "--requests", "3", "--no-origin"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    assert run.returncode == 0, run.stderr
    rows = run.stdout.splitlines()[1:]
    assert [row[:32].strip() for row in rows] == ["bare", "a script whose hooks do nothing", "addon, 1,000 rules"], run.stdout


def test_the_calibration_measures_busy_scripts_a_reading_one_the_least_and_the_addon_against_the_floor():
    run = subprocess.run([sys.executable, str(REPO / "bench" / "calibrate.py"), "--quick"],
                         capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    rows = run.stdout.split("ratio  rounds\n", 1)[1].strip().splitlines()
    names = [row.rsplit(maxsplit=4)[0] for row in rows]
    assert names == ["a script busy 6 µs a flow", "a script busy 30 µs a flow", "a script reading every header line",
                     "the least script doing the addon's job", "addon, 20 rules"]
    assert all(float(row.rsplit(maxsplit=4)[1]) > 0 for row in rows)


@pytest.mark.parametrize("arguments", [["--microseconds", "0"], ["--microseconds", "6", "-1"], ["--rounds", "0"]])
def test_the_calibration_refuses_a_bad_command_line(arguments: list[str]) -> None:
    run = subprocess.run([sys.executable, str(REPO / "bench" / "calibrate.py"), *arguments],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.returncode == 2 and "must be positive" in run.stderr
