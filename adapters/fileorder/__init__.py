"""The 掘金/东方财富 文件单 (file order) route: CSV order files in, CSV reports out."""

from zhixing.adapters.fileorder.adapter import FileOrderAdapter
from zhixing.adapters.fileorder.config import FileOrderConfig
from zhixing.adapters.fileorder.tracker import ReportTracker
from zhixing.adapters.fileorder.writer import OrderFileWriter, SidLedger

__all__ = ["FileOrderAdapter", "FileOrderConfig", "OrderFileWriter", "ReportTracker", "SidLedger"]
