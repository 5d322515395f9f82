"""secret.scrub and secret.contains_secret: every spelling a secret travels in."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from oauthcli import secret
from oauthcli.secret import MASK, contains_secret, remember, scrub

HOSTILE = 'pä ss+%:/"\\wörd'


@pytest.fixture(autouse=True)
def _fresh_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret, "_known", set())
    monkeypatch.setattr(secret, "_pending", [])
    monkeypatch.setattr(secret, "_chunks", [])


def _spellings(value: str) -> list[bytes]:
    raw = value.encode()
    return [
        raw,
        value.encode("latin-1"),
        quote_plus(value).encode(),
        quote(value, safe="").encode(),
        quote(value, safe="").lower().encode(),
        base64.b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw),
        base64.b64encode(value.encode("latin-1")),
        json.dumps(value)[1:-1].encode(),
        json.dumps(value, ensure_ascii=False)[1:-1].encode(),
        repr(value)[1:-1].encode(),
        ascii(value)[1:-1].encode(),
    ]


@pytest.mark.parametrize("index", range(13))
def test_contains_secret_finds_every_spelling(index: int) -> None:
    remember(HOSTILE)
    form = _spellings(HOSTILE)[index]
    assert contains_secret(b"grant_type=x&v=" + form + b"&z=1")


def test_contains_secret_is_false_without_a_secret() -> None:
    assert not contains_secret(b"password=anything")
    remember(HOSTILE)
    assert not contains_secret(b"")
    assert not contains_secret(b"password=anything")


def test_contains_secret_of_a_value_from_a_non_utf8_argv() -> None:
    value = b"ab\xff\xfecd".decode("utf-8", "surrogateescape")
    remember(value)
    assert contains_secret(b"x=ab\xff\xfecd")
    assert scrub(f"x={value}") == f"x={MASK}"


def test_the_trie_pattern_masks_what_a_plain_alternation_masks() -> None:
    import random
    import re

    from oauthcli.secret import _alternation

    rng = random.Random(3)
    for _ in range(2000):
        forms = {
            "".join(rng.choice("ab+=\\.") for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(1, 6))
        }
        text = "".join(rng.choice("ab+=\\.x") for _ in range(30))
        plain = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))
        assert re.sub(_alternation(forms), "*", text) == plain.sub("*", text), (forms, text)


def test_a_long_token_does_not_overflow_the_pattern_builder() -> None:
    token = "eyJ" + "A" * 20000
    remember(token)
    assert scrub(f"Bearer {token}.") == f"Bearer {MASK}."


def test_short_values_are_not_scrubbed_but_their_rule_is_on_the_raw_value() -> None:
    remember("abc")
    assert scrub("abc YWJj") == "abc YWJj"
    remember("a+b!")  # four characters: scrubbed in every spelling, even short ones
    assert scrub("a+b! a%2Bb%21 YStiIQ") == f"{MASK} {MASK} {MASK}"


def test_scrub_of_a_mib_with_twenty_secrets_stays_fast() -> None:
    import time

    for n in range(20):
        remember(f"secret-{n}-pä+/%:" * 2)
    text = ("x" * 1000 + "\n") * 1024
    scrub("warm")
    start = time.perf_counter()
    scrub(text)
    assert time.perf_counter() - start < 1.0


def test_overlapping_secrets_leave_no_piece_unmasked() -> None:
    remember("abcd1234")
    remember("1234wxyz")
    assert scrub("<abcd1234wxyz>") == f"<{MASK}>"
    remember("zzzz")
    for n in range(10):  # later secrets land in other chunks: still one run masked
        remember(f"wxyzQQ{n}")
    assert scrub("<abcd1234wxyzQQ7>") == f"<{MASK}>"
    assert contains_secret(b"..1234wxyz..")


def test_one_more_secret_does_not_recompile_them_all() -> None:
    for n in range(300):
        remember(f"row-key-{n:04d}-value")
        assert scrub(f"k=row-key-{n:04d}-value") == f"k={MASK}"
    assert len(secret._chunks) <= 9
