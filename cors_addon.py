"""The script mitmproxy loads: ``mitmdump -s cors_addon.py --set cors_rules=rules.yaml``.

It only makes the package beside it importable and hands mitmproxy the two addons:
the rules (which change flows) first, then the verdicts (which explain each flow as
it leaves). The logic lives in ``mitmcors``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mitmcors.addon import CorsRules  # noqa: E402
from mitmcors.observer import CorsVerdicts  # noqa: E402

addons = [CorsRules(), CorsVerdicts()]
