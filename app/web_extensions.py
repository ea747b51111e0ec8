"""The unbound extensions that guard served requests: CSRF protection and the rate limiter.

Apart from app/extensions.py because no `flask` command serves a request: a command
imports neither Flask-WTF nor builds a limiter (tests/test_cli_imports.py).
"""

from flask_limiter import Limiter
from flask_wtf import CSRFProtect

csrf = CSRFProtect()


def _limiter_key() -> str:
    """Key rate limits by partner when a request carries one, else by client address."""
    from flask import g, request

    partner = getattr(g, "partner", None)
    if partner is not None:
        return f"partner:{partner.id}"
    return f"ip:{request.remote_addr or 'unknown'}"


limiter = Limiter(key_func=_limiter_key, default_limits=[])
