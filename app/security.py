"""Security wiring: the content security policy and headers, the session cookie's Secure
flag, and the proxies whose X-Forwarded-* headers are believed."""

from __future__ import annotations

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Plotly sets inline styles on the elements it draws.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def register_security(app: Flask) -> None:
    """Install the session interface, the trusted proxies and the security headers."""
    app.session_interface = SessionInterface()
    trust_proxies(app)
    app.after_request(security_headers)


class SessionInterface(SecureCookieSessionInterface):
    """Mark the session cookie Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Return True when configured, or when this request is HTTPS."""
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        try:
            return bool(request.is_secure)
        except RuntimeError:
            return False


def trust_proxies(app: Flask) -> None:
    """Believe X-Forwarded-For and -Proto from TRUSTED_PROXIES hops (werkzeug's ProxyFix).

    Behind them the client address (which the rate limits key on) and the scheme (Secure
    cookie, HSTS) are the ones the proxies saw; with 0 (the default) both headers are
    ignored, as any client can send them.
    """
    hops = int(app.config["TRUSTED_PROXIES"])
    if hops < 0:
        raise ValueError("TRUSTED_PROXIES must be 0 or more (the number of proxy hops)")
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=hops,
            x_proto=hops,
            x_host=0,
            x_port=0,
            x_prefix=0,
        )


def security_headers(response: Response) -> Response:
    """Add the CSP and the other security headers; HSTS on HTTPS answers only."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if (
        request.endpoint == "static"
        and request.args.get("v")
        and response.status_code in (200, 304)
    ):
        response.cache_control.immutable = True
    if _is_secure(request):
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    return response


def _is_secure(req: Request) -> bool:
    return bool(req.is_secure)
