"""The authorization_code grant's front half: browser sign-in to a loopback listener.

RFC 8252 style: a one-shot HTTP listener on the profile's ``redirect_url``
(which must be ``http://`` on a loopback host with a port), the authorization
URL built by Authlib with PKCE S256 and a random ``state``, opened with
:mod:`webbrowser` (and handed to the caller's ``show``, for when no browser opens). The answer's
``state`` must match; its ``code`` and the PKCE verifier go back to the grant. With
``--no-browser`` (:func:`oauthcli.tokens.signin.using`) no browser is opened: the URL is
shown, with the port to forward from a remote shell, and the listener waits all the same.

Without a terminal (stdin or stderr not a tty: a CI job, a pipe, cron) nobody
will use the browser, so it fails at once instead of waiting (SPEC §5); the
refresh token cached by an interactive ``get-token`` is what such runs use.
"""

from __future__ import annotations

import secrets
import socket
import threading
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import oauthcli.tokens.signin as signin
from oauthcli.errors import GrantError, RegistryError, TokenError
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import remember
from oauthcli.transport.cpu import unpinned

#: Seconds to wait for the browser to come back to redirect_url.
WAIT = 300
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_PAGE = (
    "<!doctype html><meta charset=utf-8><title>oauthcli</title>"
    "<p>{}</p><p>You can close this tab and return to the terminal.</p>"
)


class _Listener(HTTPServer):
    def __init__(self, address: tuple[str, int], path: str) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Callback)
        self.path = path
        self.answer: dict[str, str] | None = None
        self.done = threading.Event()


class _Callback(BaseHTTPRequestHandler):
    server: _Listener

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != self.server.path or not ({"code", "error"} & query.keys()):
            self.send_error(404)
            return
        ok = "code" in query
        message = "Signed in to oauthcli." if ok else "Sign-in failed; see the terminal."
        body = _PAGE.format(message).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.answer is None:
            self.server.answer = query
            self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the query holds the authorization code


def interactive() -> bool:
    """Whether someone is at a terminal to use a browser (stdin and stderr are ttys)."""
    return signin.interactive()


def authorize(
    profile: ResolvedProfile, session: Any, show: Callable[[str], None]
) -> tuple[str, str]:
    """Sign in through the browser; the authorization code and the PKCE verifier.

    ``show`` tells the user the URL to visit (the CLI's stderr; see
    :mod:`oauthcli.tokens.signin`): this module prints nothing itself.
    """
    assert profile.authorization_url is not None and profile.redirect_url is not None
    signin.refuse_if_barred(profile.name, "through a browser (authorization_code)")
    if not interactive():
        raise TokenError(
            f"profile '{profile.name}' signs in through a browser (authorization_code) and "
            "there is no terminal to sign in from; run "
            f"`oauthcli get-token {profile.name}` interactively first (later runs use the "
            "refresh token it caches)"
        )
    redirect = urlsplit(profile.redirect_url)
    if redirect.scheme != "http" or redirect.hostname not in _LOOPBACK or not redirect.port:
        raise RegistryError.at(
            profile.source,
            None,
            "redirect_url",
            "must be http:// on a loopback host with a port, e.g. http://127.0.0.1:8976/callback",
        )
    verifier = secrets.token_urlsafe(48)
    remember(verifier)
    state = secrets.token_urlsafe(24)
    session.code_challenge_method = "S256"
    # extra_params go to the token request (SPEC §1.1); authorization_params only here
    params: dict[str, str] = dict(profile.authorization_params)
    if profile.audience:
        params["audience"] = profile.audience
    url, _ = session.create_authorization_url(
        profile.authorization_url,
        state=state,
        code_verifier=verifier,
        redirect_uri=profile.redirect_url,
        **params,
    )
    if profile.resource:
        url += "&" + urlencode([("resource", r) for r in profile.resource])
    try:
        listener = _Listener((redirect.hostname, redirect.port), redirect.path or "/")
    except OSError as exc:
        raise TokenError(
            f"cannot listen on {profile.redirect_url} for the sign-in answer: {exc.strerror}"
        ) from None
    thread = threading.Thread(target=listener.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        if signin.settings().browser:
            show(
                f"Opening a browser to sign in for profile '{profile.name}'; "
                f"if none opens, visit:\n  {url}"
            )
            with unpinned():  # from a batch worker: the browser must not inherit its one CPU
                webbrowser.open(url)
        else:
            show(
                f"To sign in for profile '{profile.name}', open this URL in a browser:\n  {url}\n"
                f"It redirects to {profile.redirect_url}; from a remote shell, forward that "
                f"port first (ssh -L {redirect.port}:127.0.0.1:{redirect.port} HOST). "
                f"Waiting up to {WAIT} s for the answer."
            )
        if not listener.done.wait(WAIT):
            raise TokenError(
                f"no sign-in answer came back to {profile.redirect_url} within {WAIT} s"
            )
    finally:
        listener.shutdown()
        listener.server_close()
    return _checked(profile, listener.answer or {}, state), verifier


def _checked(profile: ResolvedProfile, answer: dict[str, str], state: str) -> str:
    what = f"authorization for profile '{profile.name}'"
    if answer.get("state") != state:
        raise GrantError(f"{what} failed: the answer's state does not match; ignored it")
    if "error" in answer:
        desc = answer.get("error_description")
        raise GrantError(
            f"{what} failed: {answer['error']}{f': {desc}' if desc else ''}",
            error=answer["error"],
        )
    code = answer.get("code")
    if not code:
        raise GrantError(f"{what} failed: the answer carries no code")
    remember(code)
    return code
