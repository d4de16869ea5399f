"""Container health check without curl in the image: `python healthcheck.py URL`, or
`python healthcheck.py broker` for a service that only needs Kafka (the scheduler)."""

import socket
import sys
import urllib.request

from mgrecs.common.settings import get_settings


def main(target: str) -> None:
    """Exit non-zero (urllib or socket raise) when the target does not answer."""
    if target == "broker":
        host, port = get_settings().kafka_bootstrap.split(",")[0].rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=3).close()
    else:
        with urllib.request.urlopen(target, timeout=3) as response:  # noqa: S310 (own endpoint)
            response.read(1)


if __name__ == "__main__":
    main(sys.argv[1])
