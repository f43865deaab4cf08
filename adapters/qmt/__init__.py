"""The QMT route and feed: miniQMT (迅投 QMT 极简模式) through ``xtquant`` (``xttrader``, ``xtdata``)."""

from zhixing.adapters.qmt.config import QmtFeedConfig, QmtRouteConfig
from zhixing.adapters.qmt.feed import QmtQuoteFeed
from zhixing.adapters.qmt.trader import ConnectionState, QmtBrokerAdapter

__all__ = ["ConnectionState", "QmtBrokerAdapter", "QmtFeedConfig", "QmtQuoteFeed", "QmtRouteConfig"]
