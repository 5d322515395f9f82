"""The request of one call: a message's method resolved with the caller's overrides.

``oauthcli send`` (its ``-H``, ``--body``, ``--timeout``, ``--retries``), ``send --each``
and the Python API (:mod:`oauthcli.api`) all build their requests here, so a script
sends exactly what the CLI would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from oauthcli.registry.discovery import Registry
from oauthcli.registry.models import Message, Method
from oauthcli.request.resolve import RequestPlan
from oauthcli.request.resolved import ResolvedRequest
from oauthcli.secret import remember

_BODY_TYPES = {
    "json": "application/json",
    "content": "text/plain; charset=utf-8",
    "form": "application/x-www-form-urlencoded",
    "": None,
}


class RequestBuilder:
    """Planned once, rendered per call (a batch row): the resolved request, overrides applied.

    ``headers`` replace the message's of the same name (case-insensitively; an empty
    value removes one, as curl's ``-H 'Name:'``); ``body`` replaces the method's body
    template, keeping the content type it declares.
    """

    def __init__(
        self,
        registry: Registry,
        message: Message,
        method: Method,
        body: bytes | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        timeout: float | None = None,
        retries: int | None = None,
    ) -> None:
        self.body_type = None
        if body is not None:
            # The method's body template is not rendered (its variables are not needed),
            # but the type it declares still describes the bytes that replace it.
            self.body_type = _BODY_TYPES[
                "json"
                if method.has_json
                else "content"
                if method.content
                else "form"
                if method.form is not None
                else ""
            ]
            method = replace(method, json=None, has_json=False, content=None, form=None)
        self.plan = RequestPlan(registry, message, method)
        self.body = body
        self.headers = list(headers)
        self.timeout = timeout
        self.retries = retries

    def __call__(self, variables: Mapping[str, str]) -> ResolvedRequest:
        req = self.plan.resolve(variables)
        secret_names = req.auth.secret_headers()
        headers = req.headers
        for name, value in self.headers:
            for existing in [h for h in headers if h.lower() == name.lower()]:
                del headers[existing]
            if value:
                headers[name] = value
            if name.lower() in secret_names:
                remember(value)
                remember(value.partition(" ")[2])
        if self.body_type and not any(h.lower() == "content-type" for h in headers):
            headers["Content-Type"] = self.body_type
        if self.body is not None:
            req.body, req.json = self.body, None
        if self.timeout is not None:
            req.timeout = self.timeout
        if self.retries is not None:
            req.retry = replace(req.retry, attempts=self.retries + 1)
        return req
