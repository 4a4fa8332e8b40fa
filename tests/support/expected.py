"""Expected texts that depend on the environment the tests run in."""

import yaml

# libyaml (used where PyYAML was built with it) and PyYAML's own parser word this differently.
UNCLOSED_FLOW = (
    "did not find expected node content"
    if yaml.__with_libyaml__
    else "expected the node content, but found '<stream end>'"
)
