"""Take control of CORS at a mitmproxy: bypass a cross-origin block, or reproduce one.

The package is split by what changes together:

- ``cors``: the CORS protocol as browsers apply it (pure, no mitmproxy import);
- ``globs``: the small glob language of the rule files (pure);
- ``rules``: the rule-file schema, loading, compilation and matching;
- ``addon``: the mitmproxy glue (option, hooks, command, file watching, logging).
"""
