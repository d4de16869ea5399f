"""The browser-facing headers of every API answer: a Content-Security-Policy that lets the
dashboard and the docs page load only the API's own files, no framing, no MIME sniffing, no
referrer leaving the site (docs/api.md, Body limits and headers)."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Scripts and styles from files the API serves only (no inline code, no CDN)."""
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
"""Added to each HTTP response, after its own headers, by `HttpEdge`."""
