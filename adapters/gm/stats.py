"""Counters of the gm route (what it did, what it refused, what it could not read)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class GmStats:
    orders_placed: int = 0
    cancels_sent: int = 0
    unknown_submits: int = 0  # order_volume raised or answered nothing: left in flight
    duplicate_exec_reports: int = 0
    held_reports: int = 0
    external_reports: int = 0  # reports of gm orders with no link (manual, another tool): not applied
    unknown_status_codes: int = 0
    bad_reports: int = 0
    disconnects: int = 0
    resyncs: int = 0
    fill_gaps: int = 0  # status reports counting more filled shares than the trades seen
    errors: int = 0
