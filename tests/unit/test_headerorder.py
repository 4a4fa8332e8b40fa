"""The order in which Chromium checks requested headers: each row is what Chromium 156
named when a preflight allowed none of the headers a fetch() set (content-type is
application/json), over a trustworthy URL (127.0.0.1: client hints sent) or not (*.test)."""

from __future__ import annotations

import pytest

from mitmcors.headerorder import check_order


@pytest.mark.parametrize(
    "page_headers, client_hints, named",
    [
        (['X-Zeta', 'X-Alpha', 'X-Request-Id', 'Content-Type'], True, 'x-zeta'),
        (['X-Zeta', 'X-Alpha'], True, 'x-zeta'),
        (['X-B', 'X-A', 'Authorization'], True, 'authorization'),
        (['X-Alpha', 'X-Zeta'], True, 'x-zeta'),
        (['Authorization', 'X-B', 'X-A'], True, 'authorization'),
        (['X-Zeta', 'X-Client-Version', 'X-Alpha', 'Authorization', 'X-Test', 'Cache-Control'], True, 'x-zeta'),
        (['X-Requested-With', 'X-Csrf-Token', 'X-Client-Version', 'X-B'], True, 'x-csrf-token'),
        (['X-Requested-With', 'Content-Type', 'X-A', 'X-Trace'], True, 'x-trace'),
        (['Authorization', 'X-Request-Id', 'X-A', 'X-Custom'], True, 'x-custom'),
        (['X-2', 'Content-Type', 'X-Csrf-Token'], True, 'x-2'),
        (['X-Zeta', 'X-Alpha', 'X-Request-Id', 'Content-Type'], False, 'x-zeta'),
        (['X-Zeta', 'X-Alpha'], False, 'x-zeta'),
        (['X-B', 'X-A', 'Authorization'], False, 'authorization'),
        (['X-Alpha', 'X-Zeta'], False, 'x-zeta'),
        (['Authorization', 'X-B', 'X-A'], False, 'authorization'),
        (['X-Zeta', 'X-Client-Version', 'X-Alpha', 'Authorization', 'X-Test', 'Cache-Control'], False, 'x-zeta'),
        (['X-Requested-With', 'X-Csrf-Token', 'X-Client-Version', 'X-B'], False, 'x-csrf-token'),
        (['X-Requested-With', 'Content-Type', 'X-A', 'X-Trace'], False, 'x-trace'),
        (['Authorization', 'X-Request-Id', 'X-A', 'X-Custom'], False, 'x-custom'),
        (['X-2', 'Content-Type', 'X-Csrf-Token'], False, 'x-2'),
        (['Authorization', 'X-Bar'], True, 'authorization'),  # the client hints decide
        (['Authorization', 'X-Bar'], False, 'x-bar'),  # the client hints decide
    ],
)
def test_chromium_names_the_first_header_in_its_own_order(page_headers, client_hints, named):
    assert check_order(page_headers, client_hints)[0] == named


def test_the_order_does_not_depend_on_the_order_the_page_set_them():
    assert check_order(["X-Alpha", "X-Zeta"], True) == check_order(["x-zeta", "X-ALPHA"], True)


def test_every_header_is_in_the_order_once():
    names = [f"x-h{index}" for index in range(40)]
    assert sorted(check_order(names + names[:5], False)) == sorted(names)
