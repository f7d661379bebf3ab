"""Keep password reset links out of the server's access log.

A reset link opens an account for 30 minutes; its token travels in the URL path
(`/password/reset/<token>`), which uvicorn's access log writes out whole.
"""

from __future__ import annotations

import logging
import re

_RESET_LINK = re.compile(r"(/password/reset/)[^\s/?#\"]+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _RESET_LINK.sub(rf"\g<1>{REDACTED}", text)


class RedactResetLinks(logging.Filter):
    """Rewrites a record's message and arguments so that no reset token reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Filter uvicorn's access log (call before serving)."""
    logging.getLogger("uvicorn.access").addFilter(RedactResetLinks())
