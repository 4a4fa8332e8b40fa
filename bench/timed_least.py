"""The least script of ``least_addon.py``, its flow hooks timed as the addon's are
(``timed_hooks.py``): the bound for any script, where the hooks run."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from least_addon import Least  # noqa: E402
from timed_hooks import Timed  # noqa: E402

least = Least()
addons = [least, Timed(least)]
