"""The 掘金 (gm) API route and feed: ``GmBrokerAdapter``, ``GmQuoteFeed`` and the callback bridge.

Nothing here imports ``gm``: the ``gm.api`` module (or a fake with the same functions) is passed in, and
``adapters.gm.entry`` is the strategy module ``gm.api.run`` loads. See ``docs/routes/gm.md``.
"""

from zhixing.adapters.gm.bridge import GmBridge, install, installed, uninstall
from zhixing.adapters.gm.config import GmFeedConfig, GmRouteConfig
from zhixing.adapters.gm.feed import GmQuoteFeed
from zhixing.adapters.gm.runner import run_live
from zhixing.adapters.gm.trader import GmBrokerAdapter

__all__ = [
    "GmBridge",
    "GmBrokerAdapter",
    "GmFeedConfig",
    "GmQuoteFeed",
    "GmRouteConfig",
    "install",
    "installed",
    "run_live",
    "uninstall",
]
