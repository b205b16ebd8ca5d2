"""Journal URLs fit for a log line, and their query strings as libpq reads them: no driver
needed (a client-only install names a PostgreSQL URL in its errors too)."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit


def mask_password(url: str) -> str:
    """The URL with its password (in the user info or a ``password`` parameter) as ``***``."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if has_password:
        userinfo, _, hostinfo = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostinfo}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        masked = [(key, "***" if key == "password" else value) for key, value in query]
        return urlunsplit(parts._replace(netloc=netloc, query=encode_query(masked)))
    return urlunsplit(parts._replace(netloc=netloc))


def encode_query(query: list[tuple[str, str]]) -> str:
    # %20, not "+", for spaces: libpq decodes percent escapes only.
    return urlencode(query, quote_via=quote, safe="*")
