"""Take control of CORS at a mitmproxy: bypass a cross-origin block, or reproduce one.

The package is split by what changes together:

- the pure CORS model, no mitmproxy import: ``cors`` (which headers grant what),
  ``corserrors`` (Chromium's error kinds, texts and fixes), ``verdicts`` (will the
  browser accept a response, and why not), ``scenarios`` (one fault per error kind) and
  ``actions`` (what a rule's action makes of a preflight or a response);
- the rule files: ``yamlnodes`` (YAML with line numbers), ``globs``, ``schema`` (every
  key, its reader, default and meaning) and ``rules`` (loading, compiling, matching);
- the mitmproxy glue: ``flows`` (what both addons read of a flow), ``addon`` (the
  rules: option, hooks, reload command, file watching) and ``observer`` (the verdicts:
  log, marks, report, summary).
"""
