"""Auth: one class per ``auth: {type: ...}`` behind one interface (:class:`Auth`).

Each class attaches its credentials to an outgoing request in an httpx-style
generator, :meth:`Auth.auth_flow` (``reply = yield request``), and answers what the
rest of oauthcli asks of an auth: which headers are secret, how its header looks in a
``--dry-run``, its ``curl`` equivalent, its one-line ``show`` summary and what to say
when the API refuses it. :mod:`oauthcli.request.resolve` creates them; the
:class:`~oauthcli.transport.sending.Sender` drives their flows. A new auth type is one
class here plus its tests.
"""

from oauthcli.auth.base import SECRET_HEADERS, Auth, AuthState, Outgoing, Reply
from oauthcli.auth.oauth2 import OAuth2Auth
from oauthcli.auth.static import ApiKeyAuth, BasicAuth, BearerAuth, NoAuth

__all__ = [
    "SECRET_HEADERS",
    "ApiKeyAuth",
    "Auth",
    "AuthState",
    "BasicAuth",
    "BearerAuth",
    "NoAuth",
    "OAuth2Auth",
    "Outgoing",
    "Reply",
]
