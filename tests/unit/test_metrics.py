"""SC metrics render in the Prometheus text format."""
from sc_app.metrics import ScMetrics


def test_metrics_render():
    m = ScMetrics()
    m.blocked.labels(reason="no-wavelength").inc()
    m.provisioning.observe(0.012)
    m.lightpaths.labels(state="up").set(3)
    text = m.render().decode()
    assert 'cso_requests_blocked_total{reason="no-wavelength"} 1.0' in text
    assert 'cso_provisioning_seconds_bucket{le="0.02"} 1.0' in text
    assert 'cso_lightpaths{state="up"} 3.0' in text
    assert ScMetrics().render() != m.render()  # registries are per instance
