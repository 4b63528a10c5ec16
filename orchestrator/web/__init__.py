"""The ops web surface (SPEC §6): `/metrics`, the live ops dashboard and the KPI page."""

from orchestrator.web.routes import mount
from orchestrator.web.snapshot import DashboardState, LagSource
from orchestrator.web.sources import KpiSource, LocalMetrics, RemoteMetrics

__all__ = ["DashboardState", "KpiSource", "LagSource", "LocalMetrics", "RemoteMetrics", "mount"]
