"""Guessing a unit's QR token or a household's identity is throttled per client address."""

from __future__ import annotations

import secrets

from residents_app.auth.resident import hash_token, new_token
from residents_app.registry.models import UnitLink

GUESSES = 60


def test_identity_guessing_behind_a_real_token_is_throttled(client, db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "88.50")]})
    unit = estate.buildings[0].units[0]
    token = new_token()
    db.session.add(UnitLink(unit_id=unit.id, token_hash=hash_token(token)))
    db.session.commit()
    statuses = [client.post(f"/v/{token}", data={"name": "猜的", "phone_last4": f"{i:04d}"}).status_code
                for i in range(11)]
    # At most 10 wrong answers per minute from one address (the rounds feature may lock out sooner).
    first_refusal = statuses.index(429)
    assert 1 <= first_refusal <= 10
    assert statuses[:first_refusal] == [422] * first_refusal
    assert statuses[first_refusal:] == [429] * (11 - first_refusal)


def test_guessing_tokens_is_throttled(client):
    statuses = [client.get(f"/v/{secrets.token_urlsafe(20)}").status_code for _ in range(GUESSES)]
    assert set(statuses) <= {404, 429}
    assert 429 in statuses


def test_guessed_tokens_are_refused_without_saying_why(client):
    resp = client.get(f"/v/{secrets.token_urlsafe(20)}")
    assert resp.status_code == 404
    api = client.get(f"/api/ballot/{secrets.token_urlsafe(20)}")
    assert api.status_code == 404
    body = api.get_json()
    assert set(body) == {"code", "status", "message", "errors"} and body["status"] == 404


def test_guessing_tokens_through_the_api_is_throttled(client):
    """The mini-program's ballot endpoint counts misses like the page; so does casting (which is exempt from the
    per-request check and counts only its misses): 20 per minute per address, then 429 in the one error shape."""
    statuses = [client.get(f"/api/ballot/{secrets.token_urlsafe(20)}").status_code for _ in range(25)]
    assert statuses == [404] * 20 + [429] * 5
    casts = [client.post(f"/api/ballot/{secrets.token_urlsafe(20)}/cast", json={"round_id": 1, "choice": "agree"})
             for _ in range(22)]
    assert [r.status_code for r in casts] == [404] * 20 + [429] * 2
    body = casts[-1].get_json()
    assert (body["code"], body["status"]) == ("rate_limited", 429)
    assert set(body) == {"code", "status", "message", "errors"}
