"""Redirect chains pieced together from single flows."""

from __future__ import annotations

from mitmcors.chains import Chain, RedirectChains

ORIGIN = "http://app.test"


def test_a_target_continues_the_chain_once():
    chains = RedirectChains()
    chains.follow(None, "http://api.test/a", ORIGIN, "/b")
    assert chains.find("http://api.test/b", consume=False) == Chain("http://api.test/a", ORIGIN, 1)  # its preflight
    assert chains.find("http://api.test/b", consume=True) == Chain("http://api.test/a", ORIGIN, 1)
    assert chains.find("http://api.test/b", consume=True) is None


def test_hops_add_up_and_the_start_is_kept():
    chains = RedirectChains()
    chains.follow(Chain("http://api.test/a", ORIGIN, 3), "http://api.test/d", ORIGIN, "http://other.test:8080/e")
    assert chains.find("http://other.test:8080/e", consume=True) == Chain("http://api.test/a", ORIGIN, 4)


def test_targets_are_compared_as_parsed_urls():
    chains = RedirectChains()
    chains.follow(None, "http://api.test/a", ORIGIN, "HTTP://API.test:80/b")
    assert chains.find("http://api.test/b", consume=True) is not None


def test_memory_is_bounded():
    chains = RedirectChains(capacity=2)
    for index in range(3):
        chains.follow(None, "http://api.test/a", ORIGIN, f"/t{index}")
    assert chains.find("http://api.test/t0", consume=True) is None
    assert chains.find("http://api.test/t2", consume=True) is not None


def test_an_invalid_location_is_no_target():
    chains = RedirectChains()
    chains.follow(None, "http://api.test/a", ORIGIN, "http://[x/")
    assert chains.find("http://[x/", consume=True) is None
