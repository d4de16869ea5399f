"""Container health check without curl in the image: `python healthcheck.py URL` exits 0
only when the service's own endpoint answers 200."""

import sys
import urllib.request


def main(url: str) -> None:
    """Exit non-zero (urllib raises) when the endpoint does not answer 200."""
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (own endpoint)
        response.read(1)


if __name__ == "__main__":
    main(sys.argv[1])
