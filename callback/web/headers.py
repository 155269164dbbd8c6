"""The security headers every answer carries, and the pages' Content Security Policy."""
from flask import request

# Pages use only our own stylesheet: no script, no framing, forms post only to us.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def security_headers(response):
    """Every answer: no sniffing, no framing, no referrer beyond the site; every HTML answer
    (login and error pages too) its CSP and no caching; HSTS once served over HTTPS."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("Cache-Control", "no-store")
    # Zappa's handler marks every Lambda request https; a local http run gets no HSTS, which a
    # browser would ignore there anyway. No includeSubDomains: the operator's other hosts
    # under a custom domain are not ours to pin.
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
