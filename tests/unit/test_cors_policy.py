"""Which origins the CORS policy allows, from FORGELINE_CORS_ALLOWED_ORIGINS and the bind."""

from __future__ import annotations

from forgeline.core.cors import CorsPolicy
from forgeline.core.settings import Settings


def test_default_allows_any_origin_on_loopback_only():
    loopback = CorsPolicy.from_settings(Settings(host="127.0.0.1"))
    assert loopback.enabled and loopback.allows("http://localhost:3000")
    exposed = CorsPolicy.from_settings(Settings(host="0.0.0.0"))
    assert not exposed.enabled and not exposed.allows("http://localhost:3000")


def test_star_and_lists():
    star = CorsPolicy.from_settings(Settings(host="0.0.0.0", cors_allowed_origins="*"))
    assert star.allows("https://anything.example")
    assert star.allow_origin_headers("https://anything.example") == [
        (b"access-control-allow-origin", b"*")
    ]
    listed = CorsPolicy.from_settings(
        Settings(host="127.0.0.1", cors_allowed_origins="https://a.example/, https://b.example")
    )
    assert listed.allows("https://a.example") and listed.allows("https://b.example")
    assert not listed.allows("https://c.example")
    assert (b"vary", b"Origin") in listed.allow_origin_headers("https://a.example")


def test_empty_list_allows_nothing():
    none = CorsPolicy.from_settings(Settings(host="127.0.0.1", cors_allowed_origins=""))
    assert not none.enabled
