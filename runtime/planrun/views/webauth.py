"""Who may talk to `planrun ui`: the Host check, the token, its cookie, and CSRF (docs/views.md).

Loopback is not access control on a shared machine: every local user can connect to
127.0.0.1. So each request must carry the server's token, a random secret printed once in the
URL at start (as Jupyter does). The browser brings it once as `?token=`, gets it back as an
HttpOnly SameSite=Strict cookie and goes on to the URL without it; scripts send
`Authorization: Bearer TOKEN`. `Access.check` is the one gate every request goes through.

A cookie is sent by the browser on its own, so a request that changes something (any method
but GET/HEAD) authenticated by the cookie must also prove it comes from our page: an `Origin`
of this server and the page's CSRF token in the `X-Planrun-CSRF` header, which a page of
another origin can neither read nor send (a custom header needs a CORS preflight that this
server never grants). A Bearer token is never sent on its own, so it needs neither.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from urllib.parse import urlencode

from planrun.core.byvalue import ByValue
from planrun.views.model import ViewError

TOKEN_ENV = "PLANRUN_UI_TOKEN"
TOKEN_QUERY = "token"
CSRF_HEADER = "X-Planrun-CSRF"
SAFE_METHODS = frozenset({"GET", "HEAD"})
LOCAL_NAMES = ("127.0.0.1", "localhost")
# A token given through the environment must be as hard to guess as ours and safe in a URL
# and a cookie without quoting.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,256}")

NO_TOKEN = "forbidden: open the URL with ?token= that planrun ui printed"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def chosen_token(value: str | None) -> str:
    """$PLANRUN_UI_TOKEN when set (scripts know the URL in advance), else a fresh one."""
    if not value:
        return new_token()
    if not _TOKEN_SHAPE.fullmatch(value):
        raise ViewError(f"{TOKEN_ENV} must be 16 to 256 characters of A-Z, a-z, 0-9, _ and -")
    return value


def _same(given: str, expected: str) -> bool:
    # Constant time whatever `given` holds; headers arrive as latin-1 text, queries as UTF-8.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


@dataclass(frozen=True, eq=False, repr=False)
class Verdict(ByValue):
    """What the gate decided: serve, refuse (`status`, `error`), or log in: the token came in
    the URL, so set the cookie and go on to `log_in_to`, the same URL without it."""

    status: HTTPStatus = HTTPStatus.OK
    error: str = ""
    log_in_to: str = ""

    @property
    def allowed(self) -> bool:
        return self.status == HTTPStatus.OK and not self.log_in_to


SERVE = Verdict()


def _refuse(error: str) -> Verdict:
    return Verdict(HTTPStatus.FORBIDDEN, error)


@dataclass(frozen=True, eq=False, repr=False)
class Access(ByValue):
    token: str
    port: int
    csrf: str = field(default_factory=new_token)

    @property
    def cookie_name(self) -> str:
        # Cookies ignore ports: two servers on 127.0.0.1 must not overwrite each other's.
        return f"planrun-ui-{self.port}"

    def cookie(self) -> str:
        return f"{self.cookie_name}={self.token}; HttpOnly; SameSite=Strict; Path=/"

    def check(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Message
    ) -> Verdict:
        """The one check of every request, before any route runs."""
        host = (headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in LOCAL_NAMES:  # DNS rebinding: a page of another name reaching us
            return _refuse("forbidden host")
        if method in SAFE_METHODS and TOKEN_QUERY in query:
            given = query[TOKEN_QUERY]
            if len(given) != 1 or not _same(given[0], self.token):
                return _refuse(NO_TOKEN)
            rest = {k: v for k, v in query.items() if k != TOKEN_QUERY}
            # One leading slash: `//host/…` would send the browser to another site.
            location = "/" + path.lstrip("/") + (f"?{urlencode(rest, doseq=True)}" if rest else "")
            return Verdict(log_in_to=location)
        if self._bearer(headers):
            return SERVE
        if not self._cookie(headers):
            return _refuse(NO_TOKEN)
        if method not in SAFE_METHODS:
            return self._csrf(headers)
        return SERVE

    def _bearer(self, headers: Message) -> bool:
        scheme, _, given = (headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and _same(given.strip(), self.token)

    def _cookie(self, headers: Message) -> bool:
        found = False
        for line in headers.get_all("Cookie") or []:
            for pair in line.split(";"):
                name, _, value = pair.strip().partition("=")
                if name == self.cookie_name:
                    found = _same(value, self.token) or found
        return found

    def _csrf(self, headers: Message) -> Verdict:
        origins = {f"http://{name}:{self.port}" for name in LOCAL_NAMES}
        if headers.get("Origin") not in origins:
            return _refuse("forbidden: cross-origin request")
        if not _same(headers.get(CSRF_HEADER) or "", self.csrf):
            return _refuse(f"forbidden: missing or wrong {CSRF_HEADER} header")
        return SERVE
