"""gunicorn's settings file, read from the project root: the checks before any worker starts.

The app refuses a SECRET_KEY under 32 bytes when serving; each worker would also refuse,
but several workers refusing at once can make gunicorn's master crash with a traceback and
exit 1. Checking here, in the master before it forks, stops the server cleanly with exit
status 4 ("App failed to load") and one line saying why.
"""


def on_starting(server: object) -> None:
    """Refuse to start when the app's SECRET_KEY is too short (outside debug and testing)."""
    from app import config, create_app

    config.check_secret_key(create_app(), "serve")
