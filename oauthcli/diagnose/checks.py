"""The checks of ``oauthcli doctor``, in order (see :mod:`oauthcli.diagnose`).

:class:`_Doctor` keeps what earlier checks learnt (which hosts do not resolve, which
origins cannot be reached, the issuer's metadata, the token), so a later check skips,
saying why, instead of failing again for the same reason.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from oauthcli.diagnose import EXIT_CODES, Check, Status, probes
from oauthcli.errors import ExitCode, OAuthCliError, RegistryProblems, SignInNeeded
from oauthcli.registry.discovery import Registry
from oauthcli.request.resolved import ResolvedProfile, ResolvedRequest, ResolvedTLS
from oauthcli.secret import mask_token, scrub
from oauthcli.trace import Trace
from oauthcli.urls import is_loopback, origin

#: Days before a certificate's expiry from which it is a warning.
EXPIRY_WARN_DAYS = 14
#: Seconds of clock difference that are worth a warning, and beyond which JWT checks
#: (``exp``, ``iat``, ``nbf``, commonly allowed a minute of leeway) fail.
SKEW_WARN = 5.0
SKEW_FAIL = 60.0
#: Characters a line must not carry as such: C0 and C1 controls, DEL, line and paragraph
#: separators, bidirectional overrides (a server's text could rewrite the terminal).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MAX_TEXT = 400
clock = time.time


def diagnose(
    registry: Registry,
    target: str,
    *,
    force: bool = False,
    variables: Mapping[str, str] | None = None,
) -> Iterator[Check]:
    """The checks of ``target`` (a profile, a message or ``message.METHOD``), each as made."""
    yield from _Doctor(registry, target, force, dict(variables or {})).run()


def one_line(value: Any, limit: int = _MAX_TEXT) -> str:
    """``value`` fit for one line: secrets blanked, controls shown as escapes, cut."""
    text = scrub(str(value)[: limit * 8])
    text = _CONTROLS.sub(_escape, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@dataclass
class _Endpoint:
    """A URL the checks talk to, with the settings a request to it would use."""

    role: str  # "issuer", "token endpoint", "API"
    url: str
    tls: ResolvedTLS
    timeout: float
    source: Path  # the file whose tls/timeout keys apply
    key: str  # the key that gives the URL

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return origin(self.url)[2] or 443


@dataclass
class _Doctor:
    registry: Registry
    target: str
    force: bool
    variables: dict[str, str]
    profile: ResolvedProfile | None = None
    calls: list[tuple[str, ResolvedRequest]] = field(default_factory=list)
    unresolved: dict[str, str] = field(default_factory=dict)  # host -> why
    unreachable: dict[tuple[str, str, int | None], str] = field(default_factory=dict)
    untrusted: set[tuple[str, str, int | None]] = field(default_factory=set)
    metadata: dict[str, Any] | None = None
    token: Any = None  # the Token obtained, if any

    def check(self, name: str, status: Status, detail: str, hint: str = "", code: int = 0) -> Check:
        if status == "fail" and not code:
            code = int(EXIT_CODES[name])
        return Check(
            name, status, one_line(detail), one_line(hint), code if status == "fail" else 0
        )

    def run(self) -> Iterator[Check]:
        found = list(self.resolve())
        yield from found
        if any(c.status == "fail" for c in found):
            for name in ("dns", "tls", "clock", "token"):
                yield self.check(name, "skip", "nothing to check until the registry check passes")
            return
        endpoints = self.endpoints()
        yield from self.dns(endpoints)
        yield from self.tls(endpoints)
        if self.profile is not None:
            yield from self.discovery(self.profile)
        yield from self.clocks(endpoints)
        if self.profile is not None:
            yield from self.obtain(self.profile)
        elif self.calls:
            kinds = ", ".join(dict.fromkeys(r.auth.type for _, r in self.calls))
            yield self.check("token", "skip", f"the message uses auth {kinds}: no OAuth token")
        for label, req in self.calls:
            yield from self.call(label, req)

    def cannot_reach(self, url: str) -> str | None:
        """Why an earlier check says ``url`` cannot be talked to (see there), or None."""
        where = origin(url)
        if where[1] in self.unresolved:
            return "does not resolve (see dns)"
        if where in self.unreachable:
            return f"cannot be reached: {self.unreachable[where]}"
        if where in self.untrusted:
            return "shows a certificate that is refused (see tls)"
        return None

    # -- 1. registry ----------------------------------------------------------------------

    def resolve(self) -> Iterator[Check]:
        from oauthcli.request.resolve import pick_method, resolve_profile, resolve_request

        registry, target = self.registry, self.target
        try:
            message_name, _, method_name = target, "", None
            if not registry.has("messages", target) and "." in target:
                message_name, _, method_name = target.rpartition(".")
                if not registry.has("messages", message_name):
                    message_name = target
            if registry.has("messages", message_name):
                message = registry.message(message_name)
                methods = (
                    [pick_method(message, method_name)]
                    if method_name is not None
                    else list(message.methods.values())
                )
                for method in methods:
                    req = resolve_request(registry, message, method, self.variables, lenient=True)
                    self.calls.append((f"{message.name}.{method.name}", req))
                from oauthcli.auth import OAuth2Auth

                first = self.calls[0][1].auth
                # The token checked is the first oauth2 method's (a method may have its own auth).
                self.profile = next(
                    (r.auth.profile for _, r in self.calls if isinstance(r.auth, OAuth2Auth)), None
                )
                auth = f"auth {first.type}" + (
                    f" with profile {first.profile.name}" if isinstance(first, OAuth2Auth) else ""
                )
                names = ", ".join(label for label, _ in self.calls)
                yield self.check(
                    "registry", "ok", f"message {_file(message.source)}: {names}; {auth}"
                )
            elif registry.has("profiles", target):
                profile = resolve_profile(registry.profile(target), registry=registry)
                self.profile = profile
                yield self.check(
                    "registry",
                    "ok",
                    f"profile {_file(profile.source)}: grant {profile.grant_type}, "
                    f"client_auth {profile.client_auth}",
                )
            else:
                yield self.check(
                    "registry", "fail", _unknown(registry, target), "oauthcli list shows the names"
                )
        except RegistryProblems as exc:
            for problem in exc.problems:
                yield self.check(
                    "registry",
                    "fail",
                    str(problem),
                    "oauthcli validate lists every problem",
                    int(exc.exit_code),
                )
        except OAuthCliError as exc:
            yield self.check("registry", "fail", str(exc), "", int(exc.exit_code))

    # -- what is talked to --------------------------------------------------------------

    def endpoints(self) -> list[_Endpoint]:
        found: list[_Endpoint] = []
        profile = self.profile
        if profile is not None:
            from oauthcli.tokens import discovery

            known = discovery.known(profile)  # cached metadata: no network
            if profile.issuer:
                found.append(
                    _Endpoint(
                        "issuer",
                        profile.issuer,
                        profile.tls,
                        profile.timeout,
                        profile.source,
                        "issuer",
                    )
                )
            if known.token_url:
                key = "issuer" if "token_url" in known.discovered else "token_url"
                found.append(
                    _Endpoint(
                        "token endpoint",
                        known.token_url,
                        profile.tls,
                        profile.timeout,
                        profile.source,
                        key,
                    )
                )
        for _label, req in self.calls:
            found.append(_Endpoint("API", req.url, req.tls, req.timeout, req.source, "endpoint"))
        return found

    # -- 2. DNS ---------------------------------------------------------------------------

    def dns(self, endpoints: list[_Endpoint]) -> Iterator[Check]:
        hosts: dict[str, list[_Endpoint]] = {}
        for e in endpoints:
            if e.host:
                hosts.setdefault(e.host, []).append(e)
        for host, uses in hosts.items():
            roles = ", ".join(dict.fromkeys(e.role for e in uses))
            proxy = _proxy(uses[0].url)
            if _is_address(host):
                yield self.check("dns", "ok", f"{host} is an address ({roles})")
                continue
            if proxy:
                yield self.check(
                    "dns",
                    "skip",
                    f"{host} ({roles}) is reached through proxy {proxy}, which resolves it",
                )
                continue
            answer = probes.resolve(host, uses[0].port, min(e.timeout for e in uses))
            if answer.error is not None:
                self.unresolved[host] = answer.error
                where = ", ".join(dict.fromkeys(f"{e.key} in {_file(e.source)}" for e in uses))
                yield self.check(
                    "dns",
                    "fail",
                    f"{host} ({roles}) does not resolve: {answer.error}",
                    f"check the host name ({where}), or this machine's DNS, VPN or /etc/hosts",
                )
            else:
                shown = ", ".join(answer.addresses[:6])
                more = f" and {len(answer.addresses) - 6} more" if len(answer.addresses) > 6 else ""
                yield self.check("dns", "ok", f"{host} → {shown}{more} ({roles})")

    # -- 3. TLS ---------------------------------------------------------------------------

    def tls(self, endpoints: list[_Endpoint]) -> Iterator[Check]:
        seen: set[tuple[Any, ...]] = set()
        for e in endpoints:
            where = origin(e.url)
            key = (where, e.tls.verify, e.tls.ca_bundle, e.tls.client_cert)
            if key in seen:
                continue
            seen.add(key)
            shown = f"{where[1]}:{where[2]}"
            if where[0] == "http":
                if is_loopback(where[1]):
                    yield self.check("tls", "skip", f"{shown} ({e.role}): plain http on loopback")
                else:
                    yield self.check(
                        "tls",
                        "warn",
                        f"{shown} ({e.role}): plain http to a host that is not loopback "
                        "(allow_insecure_http: true); requests and tokens travel unencrypted",
                        f"use https in {_file(e.source)}",
                    )
                continue
            if where[1] in self.unresolved:
                yield self.check("tls", "skip", f"{shown} ({e.role}): the host does not resolve")
                continue
            proxy = _proxy(e.url)
            if proxy:
                yield self.check(
                    "tls",
                    "skip",
                    f"{shown} ({e.role}): reached through proxy {proxy}; not checked directly",
                )
                continue
            yield self.handshake(e, shown)

    def handshake(self, e: _Endpoint, shown: str) -> Check:
        where = origin(e.url)
        result = probes.handshake(where[1], e.port, e.tls, e.timeout)
        head = f"{shown} ({e.role})"
        cert = result.certificate
        facts = _cert_facts(cert, result.version)
        if result.error is not None and result.verify_code is None:
            self.unreachable[where] = result.error if not result.connected else "no TLS (see tls)"
            hint = (
                f"check tls in {_file(e.source)}"
                if "TLS settings" in result.error
                else "check that the server is up and speaks TLS on this port"
            )
            return self.check("tls", "fail", f"{head}: {result.error}", hint)
        if result.error is not None:
            self.untrusted.add(where)
            return self.check(
                "tls",
                "fail",
                f"{head}: {_verify_text(result, cert, where[1])}{facts}",
                _verify_hint(result, cert, e, where[1]),
            )
        if not result.verified:
            return self.check(
                "tls",
                "warn",
                f"{head}: certificate not verified ({result.trust}){facts}",
                f"remove verify: false from tls in {_file(e.source)}; set tls.ca_bundle to "
                "trust a private CA",
            )
        assert cert is not None
        days = (cert.not_after - clock()) / 86400
        if days < EXPIRY_WARN_DAYS:
            return self.check(
                "tls",
                "warn",
                f"{head}: verified, but the certificate expires in {_days(days)}{facts}",
                "the server's certificate must be renewed soon",
            )
        return self.check("tls", "ok", f"{head}: verified against {result.trust}{facts}")

    # -- 4. discovery ---------------------------------------------------------------------

    def discovery(self, profile: ResolvedProfile) -> Iterator[Check]:
        from oauthcli.errors import GrantError
        from oauthcli.tokens import discovery

        file = _file(profile.source)
        at = profile.issuer
        if not at:
            if not profile.token_url:
                return
            parts = urlsplit(profile.token_url)
            at = f"{parts.scheme}://{parts.netloc}"
        skipped = self.cannot_reach(at)
        if skipped:
            yield self.check("discovery", "skip", f"{at} {skipped}")
            return
        try:
            metadata = discovery.fetch(profile, Trace(), at=None if profile.issuer else at)
        except GrantError as exc:
            if profile.issuer:
                yield self.check(
                    "discovery",
                    "fail",
                    str(exc),
                    f"check issuer in {file}: its metadata must be served at "
                    f"{discovery.well_known(profile.issuer)[0]} or {discovery.well_known(profile.issuer)[1]}",
                )
            else:
                yield self.check(
                    "discovery",
                    "skip",
                    f"no issuer set, and no usable metadata at {at}: {_after_colon(str(exc))}",
                )
            return
        except OAuthCliError as exc:
            yield self.check("discovery", "fail", str(exc), "", int(exc.exit_code))
            return
        self.metadata = metadata
        named = metadata["issuer"]
        if profile.issuer:
            yield self.check("discovery", "ok", f"metadata of issuer {named}: issuer matches")
        else:
            yield self.check(
                "discovery",
                "ok",
                f"no issuer set; {at} serves metadata of issuer {named}",
                f"issuer: {named} in {file} would take the endpoints from it",
            )
        yield from self.compare(profile, metadata, file)

    def compare(
        self, profile: ResolvedProfile, metadata: Mapping[str, Any], file: str
    ) -> Iterator[Check]:
        from oauthcli.tokens import discovery
        from oauthcli.tokens.grants import GRANTS

        for key, member in (
            ("token_url", "token_endpoint"),
            ("revocation_url", "revocation_endpoint"),
        ):
            theirs = metadata.get(member)
            ours = getattr(profile, key)
            if ours and theirs and ours != theirs:
                yield self.check(
                    "endpoints",
                    "warn",
                    f"{key} {ours} is not the metadata's {member} {theirs}",
                    f"remove {key} from {file} to use the issuer's, or check it",
                )
            elif ours and theirs:
                yield self.check("endpoints", "ok", f"{key} is the metadata's {member}")
            elif theirs:
                yield self.check("endpoints", "ok", f"{key} from the metadata: {theirs}")
            elif key == "token_url" and not ours:
                yield self.check(
                    "endpoints",
                    "fail",
                    f"the metadata has no {member} and {file} sets no {key}",
                    f"set {key} in {file}",
                )
        methods = discovery.auth_methods(metadata)
        wire = discovery.wire_method(profile.client_auth)
        listed = "token_endpoint_auth_methods_supported" in metadata
        shown = ", ".join(one_line(m, 40) for m in methods[:12]) or "none"
        if wire in methods:
            yield self.check(
                "client auth",
                "ok",
                f"client_auth {profile.client_auth} is among the server's methods ({shown})",
            )
        else:
            said = "lists" if listed else "takes by default (RFC 8414, no list)"
            usable = [m for m in methods if m in _OURS]
            yield self.check(
                "client auth",
                "fail",
                f"client_auth {profile.client_auth} is not among the methods the server {said}: {shown}",
                f"set client_auth in {file} to one the server takes"
                + (f" ({', '.join(usable)})" if usable else ""),
            )
        grant = GRANTS.get(profile.grant_type)
        wire_grant = grant.wire if grant is not None else profile.grant_type
        grants = metadata.get("grant_types_supported")
        if isinstance(grants, list):
            if wire_grant in grants:
                yield self.check("grant", "ok", f"grant {profile.grant_type} is supported")
            else:
                yield self.check(
                    "grant",
                    "fail",
                    f"grant {profile.grant_type} is not in grant_types_supported "
                    f"({', '.join(one_line(g, 60) for g in grants[:12]) or 'none'})",
                    f"check grant_type in {file}, or ask the server's admin to enable it",
                )
        else:
            yield self.check("grant", "skip", "the metadata lists no grant_types_supported")
        if profile.dpop:
            algs = metadata.get("dpop_signing_alg_values_supported")
            if not isinstance(algs, list):
                yield self.check(
                    "dpop",
                    "warn",
                    "dpop: true but the metadata lists no "
                    "dpop_signing_alg_values_supported (the server may not take DPoP)",
                    f"check dpop in {file}",
                )
            elif "ES256" in algs:
                yield self.check("dpop", "ok", "the server takes DPoP proofs signed ES256")
            else:
                yield self.check(
                    "dpop",
                    "fail",
                    f"the server's DPoP algorithms "
                    f"({', '.join(one_line(a, 20) for a in algs[:12])}) lack ES256, "
                    "the one oauthcli signs with",
                    f"set dpop: false in {file}",
                )
        scopes = metadata.get("scopes_supported")
        asked = " ".join(profile.scope).split()
        if isinstance(scopes, list) and asked:
            unknown = [s for s in asked if s not in scopes]
            if unknown:
                yield self.check(
                    "scope",
                    "warn",
                    f"scope {' '.join(unknown)} is not in the metadata's scopes_supported",
                    f"check scope in {file}",
                )

    # -- 5. clocks ------------------------------------------------------------------------

    def clocks(self, endpoints: list[_Endpoint]) -> Iterator[Check]:
        chosen: dict[tuple[str, str, int | None], _Endpoint] = {}
        token = next((e for e in endpoints if e.role == "token endpoint"), None)
        if token is None and self.metadata and self.profile is not None:
            url = self.metadata.get("token_endpoint")
            if isinstance(url, str):
                p = self.profile
                token = _Endpoint("token endpoint", url, p.tls, p.timeout, p.source, "issuer")
        for e in [token] if token else []:
            chosen[origin(e.url)] = e
        for e in endpoints:
            if e.role == "API" and origin(e.url) not in chosen:
                root = f"{urlsplit(e.url).scheme}://{urlsplit(e.url).netloc}/"
                chosen[origin(e.url)] = _Endpoint("API", root, e.tls, e.timeout, e.source, e.key)
        if not chosen and self.profile is not None:
            yield self.check("clock", "skip", "no token endpoint known to ask")
        for where, e in chosen.items():
            yield self.clock(e, where)

    def clock(self, e: _Endpoint, where: tuple[str, str, int | None]) -> Check:
        skipped = self.cannot_reach(e.url)
        if skipped:
            return self.check("clock", "skip", f"{e.role} {where[1]} {skipped}")
        answer = probes.dated(e.url, e.tls, e.timeout)
        if answer.error is not None:
            self.unreachable[where] = answer.error
            code = ExitCode.NETWORK
            return self.check(
                "clock",
                "fail",
                f"{e.role} {one_line(e.url, 200)}: {answer.error}",
                f"check that the server is up (timeout {e.timeout:g} s in {_file(e.source)})",
                int(code),
            )
        if answer.date is None:
            return self.check(
                "clock",
                "warn",
                f"{e.role} answered without a Date header",
                "the clock could not be compared",
            )
        if answer.skew is None:
            return self.check(
                "clock",
                "warn",
                f"{e.role}'s Date header is not a date: {one_line(repr(answer.date), 80)}",
                "the clock could not be compared",
            )
        skew, margin = answer.skew, answer.uncertainty
        off = max(0.0, abs(skew) - margin)
        said = _skew_text(skew, margin, e.role)
        leeway = self.profile.token_leeway if self.profile is not None else SKEW_FAIL
        behind = skew > 0  # the server is ahead: this machine sends tokens it thinks valid
        if off > SKEW_FAIL or (behind and off > max(SKEW_WARN, leeway)):
            why = (
                "JWT exp, iat and nbf checks allow about a minute"
                if off > SKEW_FAIL
                else f"tokens are renewed {leeway} s before they expire (token_leeway), "
                "so some would reach the API expired"
            )
            return self.check(
                "clock",
                "fail",
                f"{said}: {why}",
                "synchronise this machine's clock (NTP: timedatectl set-ntp true)",
            )
        if off > SKEW_WARN:
            return self.check("clock", "warn", said, "synchronise this machine's clock (NTP)")
        return self.check("clock", "ok", said)

    # -- 6. the token ---------------------------------------------------------------------

    def obtain(self, profile: ResolvedProfile) -> Iterator[Check]:
        from oauthcli.tokens import obtain, signin
        from oauthcli.tokens.discovery import known
        from oauthcli.tokens.jwtinfo import duration

        # An issuer-only profile with no metadata cached reaches its token endpoint
        # through the issuer: what an earlier check said of either is not asked again.
        token_url = known(profile).token_url
        first = token_url or profile.issuer
        skipped = self.cannot_reach(first) if first else None
        if first and skipped:
            host = urlsplit(first).netloc
            what = "token endpoint" if token_url else "issuer"
            yield self.check("token", "skip", f"the {what} {host} {skipped}")
            return
        try:
            with signin.using(sign_in=False, wait=False, browser=False):
                obtained = obtain(profile, force=self.force)
        except SignInNeeded:
            yield self.check(
                "token",
                "skip",
                f"profile {profile.name} signs in interactively and has no usable cached token",
                f"sign in first: oauthcli get-token {profile.name}",
            )
            return
        except OAuthCliError as exc:
            yield self.check(
                "token", "fail", str(exc), _token_hint(profile, str(exc)), int(exc.exit_code)
            )
            return
        from oauthcli.present.explain import token_findings

        token = self.token = obtained.token
        now = clock()
        if obtained.source == "cache":
            how = f"cached, valid for {duration((token.expires_at or now) - now)}"
        else:
            verb = "refreshed at" if obtained.source == "refresh" else "new from"
            how = f"{verb} {known(profile).token_url or profile.token_server}"
        found = token_findings(token, None, profile, now)
        masked = mask_token(token.access_token.reveal())
        summary = found.summary.removeprefix("token ")
        yield self.check("token", "ok", f"{how}: {masked} {summary}")
        for note in obtained.warnings:
            yield self.check("token", "warn", note)
        if not self.calls:
            for problem in found.problems:
                yield self.check(
                    "token",
                    "warn",
                    problem,
                    f"check scope in {_file(profile.source)} and what the client "
                    "may ask for at the server",
                )

    # -- 7. the call ----------------------------------------------------------------------

    def call(self, label: str, req: ResolvedRequest) -> Iterator[Check]:
        from oauthcli.auth import OAuth2Auth

        if isinstance(req.auth, OAuth2Auth):
            yield self.audience(label, req)
        yield self.dry_run(label, req)

    def audience(self, label: str, req: ResolvedRequest) -> Check:
        from oauthcli.auth import OAuth2Auth
        from oauthcli.present.explain import token_findings

        if self.token is None:
            return self.check("call", "skip", f"{label}: no token to compare (see token)")
        assert isinstance(req.auth, OAuth2Auth)
        profile = req.auth.profile
        if self.profile is None or profile.name != self.profile.name:
            return self.check(
                "call",
                "skip",
                f"{label}: sent with profile {profile.name}, not {getattr(self.profile, 'name', '')}",
                f"oauthcli doctor {profile.name} checks its token",
            )
        found = token_findings(self.token, req.url, profile, clock())
        if found.problems:
            return self.check(
                "call",
                "fail",
                f"{label}: " + "; ".join(found.problems),
                f"check audience, resource and scope in {_file(profile.source)}, and what the "
                "client may ask for at the server",
            )
        return self.check(
            "call", "ok", f"{label}: the token's audience and scope fit {urlsplit(req.url).netloc}"
        )

    def dry_run(self, label: str, req: ResolvedRequest) -> Check:
        from oauthcli.present.output import dry_run_object

        try:
            shown = dry_run_object(req)
        except OAuthCliError as exc:
            return self.check("dry run", "fail", f"{label}: {exc}", "", int(exc.exit_code))
        line = f"{label}: {shown['http_method']} {shown['url']}"
        if req.missing:
            names = ", ".join(req.missing)
            flags = " ".join(f"-V {n}=VALUE" for n in req.missing)
            return self.check(
                "dry run",
                "warn",
                f"{line} (no value for {names})",
                f"give them: oauthcli doctor {self.target} {flags}",
            )
        return self.check("dry run", "ok", f"{line} (not sent)")


#: The client_auth values oauthcli has, by their wire names.
_OURS = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
    "none",
)


def _file(path: Path) -> str:
    """A registry file as errors name it: relative to the current folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _unknown(registry: Registry, target: str) -> str:
    import difflib

    names = registry.names("profiles") + registry.names("messages")
    close = difflib.get_close_matches(target.partition(".")[0], names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"no profile or message named '{target}'{hint}"


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _proxy(url: str) -> str | None:
    """The proxy requests would send ``url`` through (the environment's), or None."""
    from requests.utils import get_environ_proxies

    proxies = get_environ_proxies(url)
    scheme = urlsplit(url).scheme
    found = proxies.get(scheme) or proxies.get("all")
    if not found:
        return None
    parts = urlsplit(found)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}" if parts.hostname else "(set)"


def _days(days: float) -> str:
    if days < 1:
        return f"{days * 24:.0f} hours"
    return f"{days:.0f} day{'' if round(days) == 1 else 's'}"


def _cert_facts(cert: probes.Certificate | None, version: str | None) -> str:
    parts = []
    if cert is not None:
        from oauthcli.tokens.jwtinfo import iso_time

        left = (cert.not_after - clock()) / 86400
        when = f"expires {iso_time(cert.not_after)}" if left >= 0 else "expired"
        parts.append(f"{when}, for {', '.join(cert.names[:4]) or cert.subject}")
    if version:
        parts.append(version)
    return f" ({'; '.join(parts)})" if parts else ""


# OpenSSL's X509_V_ERR_* numbers for what a user can act on.
_EXPIRED, _NOT_YET_VALID = 10, 9
_UNTRUSTED = frozenset({18, 19, 20, 21, 2})  # self-signed, chain, unknown issuer
_HOSTNAME = frozenset({62, 64})  # host name, IP address mismatch


def _verify_text(result: probes.Handshake, cert: probes.Certificate | None, host: str) -> str:
    code = result.verify_code
    if code == _EXPIRED and cert is not None:
        return f"the certificate expired {_days((clock() - cert.not_after) / 86400)} ago"
    if code in _HOSTNAME and cert is not None:
        return f"the certificate is for {', '.join(cert.names) or cert.subject}, not {host}"
    if code in _UNTRUSTED:
        who = f" (issued by {cert.issuer})" if cert is not None else ""
        return f"the certificate{who} is not trusted by {result.trust}: {result.error}"
    return f"certificate refused: {result.error}"


def _verify_hint(
    result: probes.Handshake, cert: probes.Certificate | None, e: _Endpoint, host: str
) -> str:
    file = _file(e.source)
    code = result.verify_code
    if code == _EXPIRED:
        return "the server's certificate must be renewed (nothing to change here)"
    if code == _NOT_YET_VALID:
        return "check this machine's clock, or the server's certificate"
    if code in _HOSTNAME:
        return f"use the host the certificate names in {e.key} of {file}, or fix the certificate"
    if code in _UNTRUSTED:
        if e.tls.ca_bundle:
            return (
                f"tls.ca_bundle {e.tls.ca_bundle} in {file} does not hold the CA that issued "
                "the server's certificate"
            )
        return (
            f"set tls: {{ca_bundle: CA.pem}} in {file} (the PEM file of the CA that issued "
            "the server's certificate)"
        )
    return f"check tls in {file}"


def _skew_text(skew: float, margin: float, role: str) -> str:
    side = "behind" if skew > 0 else "ahead of"
    return f"this machine's clock is {abs(skew):.0f} s (± {margin:.0f} s) {side} the {role}'s Date"


def _after_colon(text: str) -> str:
    return text.split(": ", 1)[1] if ": " in text else text


def _token_hint(profile: ResolvedProfile, text: str) -> str:
    file = _file(profile.source)
    if "invalid_client" in text:
        return f"check client_id, the client secret or key, and client_auth in {file}"
    if "invalid_scope" in text:
        return f"check scope in {file} against what the client may ask for"
    if "unauthorized_client" in text or "unsupported_grant_type" in text:
        return f"check grant_type in {file}: the server does not allow it for this client"
    if "invalid_grant" in text:
        return f"the credential of the grant was refused: check {file}"
    return f"oauthcli get-token {profile.name} -v shows the exchange"
