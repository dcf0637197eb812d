"""Prometheus metrics of the SC (served by SMI at ``/metrics``)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: Provisioning latency buckets (seconds): target median < 20 ms, p99 < 100 ms.
LATENCY_BUCKETS = (0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
                   0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ScMetrics:
    """The SC's counters, gauges and histograms in a registry of their own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.lightpaths = Gauge("cso_lightpaths", "Lightpaths by state", ["state"], registry=reg)
        self.established = Counter("cso_lightpaths_established", "Lightpaths set up",
                                   registry=reg)
        self.blocked = Counter("cso_requests_blocked", "Refused lightpath requests by reason",
                               ["reason"], registry=reg)
        self.provisioning = Histogram("cso_provisioning_seconds",
                                      "ASI request to every flow entry barrier-confirmed",
                                      buckets=LATENCY_BUCKETS, registry=reg)
        self.alarms = Gauge("cso_alarms_active", "Active alarms by kind", ["kind"], registry=reg)
        self.switches = Gauge("cso_switches_connected", "Connected OpenFlow switches",
                              registry=reg)
        self.links_up = Gauge("cso_links_up", "Fibres usable (admin and oper up)", registry=reg)
        self.wavelengths_used = Gauge("cso_wavelengths_used", "Occupied (link, wavelength) pairs",
                                      registry=reg)
        self.restorations = Counter("cso_restorations", "Lightpath recoveries by outcome",
                                    ["outcome"], registry=reg)
        self.restoration = Histogram("cso_restoration_seconds",
                                     "Fibre failure seen to the new route installed",
                                     buckets=LATENCY_BUCKETS, registry=reg)
        self.handler_errors = Counter("cso_handler_errors", "Unexpected handler failures",
                                      ["handler"], registry=reg)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
