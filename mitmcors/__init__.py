"""Take control of CORS at a mitmproxy: bypass a cross-origin block, or reproduce one.

The package is split by what changes together:

- the pure CORS model, no mitmproxy import: ``cors`` (which headers grant what),
  ``corserrors`` (Chromium's error kinds, texts and fixes), ``verdicts`` (will the
  browser accept a response, and why not), ``urls`` (URLs as browsers parse them),
  ``headerorder`` (the order Chromium checks request headers in), ``chains`` (redirect
  chains pieced together from flows), ``scenarios`` (one fault per error kind),
  ``actions`` (what a rule's action makes of a preflight or a response) and ``oneline``
  (text safe for one log line);
- the rule files: ``yamlnodes`` (YAML with line numbers), ``globs``, ``schema`` (every
  key, its reader, default and meaning) and ``rules`` (loading, compiling, matching);
- the mitmproxy glue: ``flows`` (what both halves read of a flow), ``addon`` (the
  rules: option, hooks, file watching), ``observer`` (the verdicts: log, marks,
  summary), ``report`` (the report file), ``exposure`` (the warning for a proxy open
  beyond loopback), ``combined`` (both halves as the one addon mitmproxy loads) and
  ``scriptmodule`` (what the script's module holds for mitmproxy's lookups to be cheap).
"""
