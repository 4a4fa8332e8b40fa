"""The script mitmproxy loads: ``mitmdump -s cors_addon.py --set cors_rules=rules.yaml``.

It only makes the package beside it importable and hands mitmproxy the addon: the
rules (which change flows) and then the verdicts (which explain each flow as it
leaves), behind one object. The events it leaves to that object it names as None, so
that mitmproxy finds them on this module at once (see ``mitmcors.scriptmodule``). The
logic lives in ``mitmcors``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mitmcors.combined import Cors  # noqa: E402
from mitmcors.scriptmodule import events_as_none  # noqa: E402

addons = [Cors()]
globals().update(events_as_none(globals()))  # mitmproxy's lookups on this module, spared an exception each
