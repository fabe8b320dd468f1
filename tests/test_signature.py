"""Persona-Signature verification on raw bytes (pure)."""

import pytest

from bridge.persona.signature import SignatureError, header_for, parse_header, sign, verify

BODY = b'{"data":{"type":"event","id":"evt_1"}}'
OLD, NEW = "wbhsec_old_secret", "wbhsec_new_secret"


def test_sign_is_lowercase_hex_hmac_of_t_dot_body():
    # Reference value computed independently: HMAC-SHA256("wbhsec_old_secret", "1700000000." + BODY)
    import hashlib
    import hmac

    expected = hmac.new(OLD.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(OLD, 1700000000, BODY) == expected
    assert expected == expected.lower() and len(expected) == 64


def test_valid_signature_returns_its_timestamp():
    assert verify(header_for([OLD], 1700000000, BODY), BODY, [OLD], now=1700000000, tolerance_seconds=None) == 1700000000


def test_rotation_header_with_two_sets_accepts_either_secret():
    header = header_for([NEW, OLD], 1700000000, BODY)
    assert " " in header and len(parse_header(header)) == 2
    for configured in ([OLD], [NEW], [OLD, NEW]):
        assert verify(header, BODY, configured, now=1700000000, tolerance_seconds=None) == 1700000000


def test_several_configured_secrets_any_matches():
    header = header_for([NEW], 1700000000, BODY)
    assert verify(header, BODY, ["wbhsec_other", NEW], now=1700000000, tolerance_seconds=None)


@pytest.mark.parametrize("header, message", [
    (None, "missing"),
    ("", "missing"),
    ("garbage", "malformed"),
    ("t=abc,v1=00", "malformed"),
    ("v1=abcdef", "malformed"),
])
def test_missing_or_malformed_header(header, message):
    with pytest.raises(SignatureError, match=message):
        verify(header, BODY, [OLD], now=0, tolerance_seconds=None)


def test_wrong_secret_and_tampered_body_are_rejected():
    header = header_for([OLD], 1700000000, BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, BODY, ["wbhsec_wrong"], now=1700000000, tolerance_seconds=None)
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, BODY + b" ", [OLD], now=1700000000, tolerance_seconds=None)


def test_signature_over_reserialised_json_does_not_verify_raw_bytes():
    # Hash the bytes as received: a body re-serialised with other spacing is another message.
    pretty = b'{"data": {"type": "event", "id": "evt_1"}}'
    with pytest.raises(SignatureError):
        verify(header_for([OLD], 1, pretty), BODY, [OLD], now=1, tolerance_seconds=None)


def test_default_no_tolerance_accepts_a_51_hour_old_retry():
    sent = 1700000000
    assert verify(header_for([OLD], sent, BODY), BODY, [OLD], now=sent + 51 * 3600, tolerance_seconds=None)


def test_configured_tolerance_rejects_stale_and_accepts_fresh():
    header = header_for([OLD], 1700000000, BODY)
    assert verify(header, BODY, [OLD], now=1700000299, tolerance_seconds=300)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(header, BODY, [OLD], now=1700000301, tolerance_seconds=300)


def test_no_configured_secret_rejects():
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify(header_for([OLD], 1, BODY), BODY, [], now=1, tolerance_seconds=None)
