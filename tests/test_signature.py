"""Persona-Signature verification on raw bytes (pure)."""

import pytest


from bridge.persona.signature import MAX_SIGNATURE_SETS, SignatureError, header_for, parse_header, sign, verify

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


# -- hostile headers: a clear SignatureError (401), never another exception (500) -----------------

GOOD_DIGEST = sign(OLD, 1700000000, BODY)


@pytest.mark.parametrize("header", [
    f"t=1700000000,v1={'é' * 64}",                      # non-ASCII digest: compare_digest raised TypeError
    f"t=1700000000,v1={GOOD_DIGEST[:-1]}é",
    f"t={'9' * 5000},v1={GOOD_DIGEST}",                  # past int()'s digit limit: ValueError
    f"t=17000000٠٠,v1={GOOD_DIGEST}",                    # Arabic-Indic digits pass str.isdigit()
    f"t=1700000000,v1={GOOD_DIGEST[:10]}",               # not 64 hex characters
    f"t=1700000000,v1={'z' * 64}",
    "t=,v1=,=,,, t v1",
    "\x00\ud800",
])
def test_malformed_parts_are_a_signature_error_never_a_crash(header):
    with pytest.raises(SignatureError, match="malformed"):
        verify(header, BODY, [OLD], now=1700000000, tolerance_seconds=None)


def test_a_good_set_beside_malformed_ones_still_verifies():
    header = f"t=1700000000,v1={'é' * 64},v1={GOOD_DIGEST}"
    assert verify(header, BODY, [OLD], now=1700000000, tolerance_seconds=None) == 1700000000


def test_the_number_of_signature_sets_is_capped_before_any_hmac(monkeypatch):
    hashed = []
    monkeypatch.setattr("bridge.persona.signature._hmac", lambda *args: hashed.append(args) or "0" * 64)
    many = " ".join(f"t={1700000000 + n},v1={'0' * 64}" for n in range(MAX_SIGNATURE_SETS + 1))
    with pytest.raises(SignatureError, match="too many signature sets"):
        verify(many, BODY, [OLD], now=1700000000, tolerance_seconds=None)
    assert hashed == []
    many_digests = "t=1700000000," + ",".join(f"v1={'0' * 64}" for _ in range(MAX_SIGNATURE_SETS + 1))
    with pytest.raises(SignatureError, match="too many signature sets"):
        verify(many_digests, BODY, [OLD], now=1700000000, tolerance_seconds=None)
    assert hashed == []


def test_one_hmac_per_secret_and_timestamp(monkeypatch):
    """Two sets with the same timestamp (a rotation) cost one HMAC per configured secret, not two."""
    import bridge.persona.signature as module

    header = header_for([NEW, OLD], 1700000000, BODY)
    calls, real = [], module._hmac
    monkeypatch.setattr(module, "_hmac", lambda *args: calls.append(args[:2]) or real(*args))
    assert verify(header, BODY, [OLD, NEW], now=1700000000, tolerance_seconds=None) == 1700000000
    assert len(calls) == 2
