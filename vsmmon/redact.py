"""Hide credentials in URLs before they reach a log line, a status print or an error."""

from __future__ import annotations

import re

_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^@/\s]*@")


def redact_url(url: str) -> str:
    """Return `url` with its password, if any, replaced by `***`; the user name stays readable."""
    return _PASSWORD.sub(r"\g<head>:***@", url)
