"""The addon of ``cors_addon.py``, its flow hooks timed (``timed_hooks.py``)."""

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from cors_addon import addons as cors_addons  # noqa: E402
from timed_hooks import Timed  # noqa: E402

addons = [cors_addons[0], Timed(cors_addons[0])]
