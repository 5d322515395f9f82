"""Retries of one call: the message's ``retry:``, full-jitter backoff and ``Retry-After``.

A failure to connect (refused, reset, timed out) and an answer with a status in
``retry.on_status`` are tried again, for idempotent methods unless
``idempotent_only: false``, at most ``retry.attempts`` times in all; ``Retry-After``
(seconds or an HTTP-date) is honoured up to ``max_delay``.
"""

from __future__ import annotations

from collections.abc import Callable

from oauthcli.errors import NetworkError
from oauthcli.request.resolved import IDEMPOTENT, ResolvedRequest
from oauthcli.trace import Trace
from oauthcli.transport.exchange import Answer, Transient, discard
from oauthcli.transport.http import backoff_delay, retry_after


class Retrying:
    """The tries of one call, counted across everything it sends."""

    __slots__ = ("attempts", "retry", "retryable", "sleep", "trace", "tries")

    def __init__(self, req: ResolvedRequest, sleep: Callable[[float], None], trace: Trace) -> None:
        self.retry = req.retry
        self.retryable = req.http_method in IDEMPOTENT or not self.retry.idempotent_only
        self.sleep = sleep
        self.trace = trace
        #: Requests sent (each redirect chain counts once), for ``Result.attempts``.
        self.attempts = 0
        self.tries = 0

    def send(
        self, attempt: Callable[[], Answer], *, keep: Callable[[Answer], bool] | None = None
    ) -> Answer:
        """The answer of ``attempt`` once it is not to be retried; raises NetworkError.

        An answer ``keep`` holds is returned even when its status is retried: it goes
        to the auth flow first (a 401 to credentials sent), and :meth:`again` decides after.
        """
        while True:
            self.attempts += 1
            self.tries += 1
            try:
                answer = attempt()
            except Transient as exc:
                self.wait_or_raise(exc)
                continue
            if self.again(answer, unless=keep):
                continue
            return answer

    def again(self, answer: Answer, *, unless: Callable[[Answer], bool] | None = None) -> bool:
        """Whether ``answer``'s status is tried again; if so it is let go of after the wait
        (``Retry-After``, else the backoff) has been slept."""
        retry = self.retry
        status = answer.response.status_code
        if status not in retry.on_status or not self.retryable or self.tries >= retry.attempts:
            return False
        if unless is not None and unless(answer):
            return False
        wait = retry_after(answer.response.headers.get("Retry-After"), retry.max_delay)
        if wait is None:
            wait = backoff_delay(retry, self.tries)
        self.trace.note(f"retry {self.tries}/{retry.attempts - 1} in {wait:.2f} s: HTTP {status}")
        discard(answer)
        self.sleep(wait)
        return True

    def not_a_retry(self) -> None:
        """The next request re-sends with new credentials (after a 401): not one of the retries."""
        self.tries -= 1

    def wait_or_raise(self, exc: Transient) -> None:
        """Back off before the next try of a failed attempt, or raise when none is left."""
        retry = self.retry
        tries = self.tries if self.retryable else retry.attempts
        if exc.retryable and tries < retry.attempts:
            delay = backoff_delay(retry, tries)
            self.trace.note(f"retry {tries}/{retry.attempts - 1} in {delay:.2f} s: {exc.cause}")
            self.sleep(delay)
            return
        raise NetworkError(f"{exc.what} {exc.url}: {exc.cause}") from None
