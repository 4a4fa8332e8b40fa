"""The do-nothing script of ``noop_addon.py``, its flow hooks timed as the addon's are
(``timed_hooks.py``): what it measures is the timing's own cost."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from noop_addon import NoOp  # noqa: E402
from timed_hooks import Timed  # noqa: E402

noop = NoOp()
addons = [noop, Timed(noop)]
