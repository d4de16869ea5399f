"""Prometheus helpers: workers expose their own /metrics port, HTTP services mount it."""

from prometheus_client import start_http_server


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose the default registry on http://host:port/metrics (background thread)."""
    start_http_server(port, addr=host)
