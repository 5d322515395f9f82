"""A worker process of ``send --each`` at high concurrency (see :mod:`oauthcli.transport.batch`).

Started by :mod:`oauthcli.cli.batch` as ``python -m oauthcli.cli.batchworker``, never
by a user, when the parent cannot fork (another thread runs, as in a test process):
a forked worker runs :func:`oauthcli.cli.batch.serve` with the parent's own request
builder instead, with no start-up to pay. Its stdin starts with one JSON line, the recipe: the registry folder, the
target, the call's variables and overrides (``-H``, ``--body``, ``--timeout``,
``--retries``), ``--no-fail``, ``--log-level``, the per-row body limit, this worker's
concurrency and the CPU to keep its threads on. Each row it sends is a record of the
outbound log it writes itself (:mod:`oauthcli.outlog`).
Then one line per row, ``NUMBER<TAB>{json object}``. It builds each row's request as
the parent would (:class:`~oauthcli.request.build.RequestBuilder`), sends it through a
``Sender`` of its own (the token comes from the shared token cache) and answers, in
the order the rows came, ``NUMBER<TAB>EXIT<TAB>[explanation]<TAB>json line`` on stdout,
scrubbed of every secret it knows (the parent may never have seen the token).

Ctrl-C and SIGTERM are the parent's to handle: the worker ignores them, and stops
once its stdin ends, after answering every row it was given.
"""

from __future__ import annotations

import base64
import json
import signal
import sys

from oauthcli.cli.batch import serve
from oauthcli.errors import ExitCode
from oauthcli.secret import scrub


def main() -> int:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    stdin = sys.stdin.buffer
    recipe = json.loads(stdin.readline())
    from oauthcli.cli.send import RequestBuilder, SendOptions
    from oauthcli.present.query import compile_query
    from oauthcli.registry.discovery import discover
    from oauthcli.request.resolve import split_target

    registry = discover(recipe["registry"], env=recipe.get("env"))
    message, method = split_target(registry, recipe["target"], recipe["method"])
    body = base64.b64decode(recipe["body"]) if recipe.get("body") is not None else None
    options = SendOptions(
        headers=[(n, v) for n, v in recipe["headers"]],
        timeout=recipe["timeout"],
        retries=recipe["retries"],
        profile=recipe.get("profile"),
    )
    builder = RequestBuilder(registry, message, method, body, options)
    variables: dict[str, str] = recipe["variables"]
    serve(
        stdin,
        sys.stdout.buffer,
        lambda row: builder({**variables, **row}),
        no_fail=recipe["no_fail"],
        concurrency=recipe["concurrency"],
        body_limit=recipe["body_limit"],
        cpu=recipe["cpu"],
        query=compile_query(recipe.get("query")),
        log_level=recipe.get("log_level"),
    )
    return int(ExitCode.OK)


def _run() -> int:
    from oauthcli.errors import OAuthCliError

    try:
        return main()
    except BrokenPipeError:  # the parent is gone
        return int(ExitCode.BROKEN_PIPE)
    except OAuthCliError as exc:  # the registry changed under the run: the parent reports rows
        sys.stderr.write(f"oauthcli batch worker: {scrub(str(exc))}\n")
        return int(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        sys.stderr.write(
            f"oauthcli batch worker: internal error: {type(exc).__name__}: {scrub(str(exc))}\n"
        )
        return int(ExitCode.INTERNAL)


if __name__ == "__main__":
    sys.exit(_run())
