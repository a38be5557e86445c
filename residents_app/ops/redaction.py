"""Keep secrets out of logs: the per-unit token in /v/<token> and /api/ballot/<token>/... is a
password to a household's vote, and a receipt code shows how that household voted.

werkzeug's and gunicorn's access logs print request paths (and gunicorn the Referer), and the
app's own error log prints the path. A filter rewrites /v/<token> as /v/[已隐藏] (and the same for
the ballot API and receipt paths) in every record before any handler formats it.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[已隐藏]"
# The path segment after these prefixes is a secret (any characters up to the next / ? # or space).
TOKEN_PATH = re.compile(r"(/v/|/api/ballot/receipt/|/api/ballot/|/receipt/)(?!receipt/)[^/?#\s\"']+")
SECRET_QUERY = re.compile(r"(?i)([?&](?:token|code|password|passwd|secret|csrf_token)=)[^&#\s\"']*")
LOGGER_NAMES = ("werkzeug", "gunicorn.access", "gunicorn.error", "flask.app")


def redact(text: str) -> str:
    text = TOKEN_PATH.sub(r"\1" + REDACTED, text)
    return SECRET_QUERY.sub(r"\1" + REDACTED, text)


def _redact_value(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("latin-1"))
    return value


class RedactSecrets(logging.Filter):
    """Rewrites msg, args (tuple or gunicorn's atom dict) and the formatted traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_secrets_redacted", False):
            return True
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, dict):
            record.args = {k: _redact_value(v) for k, v in args.items()}
        elif isinstance(args, tuple):
            record.args = tuple(_redact_value(a) for a in args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record._secrets_redacted = True
        return True


_FILTER = RedactSecrets()


def install_log_redaction() -> None:
    """Idempotent: the filter on the loggers that print paths and on every root handler.

    A logger's filter only sees records created on that logger; a handler's filter sees every
    record that reaches it, including those propagated from child loggers.
    """
    for name in LOGGER_NAMES:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
