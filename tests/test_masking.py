"""What the outbound log and the terminal mask by name (oauthcli.masking) and what the
log keeps of a body (oauthcli.outlog.record.body_members)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode

import pytest

from oauthcli.masking import TOKEN_ANSWER_MEMBERS, TOKEN_FORM_FIELDS, mask_answer, mask_form
from oauthcli.outlog.record import BODY_LIMIT, body_members
from oauthcli.secret import Secret, scrub_bytes


@pytest.mark.parametrize("name", sorted(TOKEN_FORM_FIELDS))
def test_each_credential_form_field_is_masked_whatever_its_value(name: str) -> None:
    body = urlencode([("grant_type", "x"), (name, "v+/=%&1"), ("client_id", "app")])
    form = parse_qs(mask_form(body))
    assert form[name] == ["****"] and form["client_id"] == ["app"] and form["grant_type"] == ["x"]


def test_a_field_name_written_percent_encoded_is_masked_too() -> None:
    assert mask_form("client%5Fsecret=abc&x=1") == "client%5Fsecret=****&x=1"
    assert mask_form("password") == "password"  # no value: nothing to mask


@pytest.mark.parametrize("member", sorted(TOKEN_ANSWER_MEMBERS))
def test_each_credential_member_of_an_answer_is_masked(member: str) -> None:
    text = json.dumps({member: "tok-value", "expires_in": 60, "token_type": "Bearer"})
    assert json.loads(mask_answer(text)) == {
        member: "****",
        "expires_in": 60,
        "token_type": "Bearer",
    }
    form = parse_qs(mask_answer(urlencode({member: "tok-value", "scope": "a b"})))
    assert form == {member: ["****"], "scope": ["a b"]}


def test_an_answer_that_is_neither_json_nor_a_form_is_left_to_the_scrubbing() -> None:
    assert mask_answer("<html>oops</html>") == "<html>oops</html>"
    assert mask_answer('["access_token"]') == '["access_token"]'


def test_a_body_is_cut_at_64_kib_on_a_character_boundary() -> None:
    text = "é" * BODY_LIMIT  # two bytes each: the cut falls inside a character
    members = body_members(text.encode(), "response", size=len(text.encode()))
    assert members["response_body_truncated"] is True
    assert members["response_body"] == "é" * (BODY_LIMIT // 2)
    assert "response_body_encoding" not in members


def test_a_binary_body_is_base64_with_known_secrets_blanked() -> None:
    Secret("bin-secret-7777")
    data = b"\x89PNG\x00bin-secret-7777\xff"
    members = body_members(data, "request")
    assert members["request_body_encoding"] == "base64"
    assert base64.b64decode(members["request_body"]) == b"\x89PNG\x00****\xff"
    assert scrub_bytes(base64.b64encode(b"bin-secret-7777")) == b"****"
