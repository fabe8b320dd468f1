"""The log filter masks email addresses whatever their characters (issue 14, finding 7)."""

import logging
import re
from urllib.parse import quote

import pytest

from bridge.logs import RedactEmails

ADDRESSES = ["plain.person@example.com", "a*b@example.com", "wow!x@example.com", "o'brien@example.com",
             "hash#tag@example.com", "back\\slash@example.com", "jürgen@bücher.de", "user@例え.jp",
             "a/b@example.com", "x%y@example.com"]


def masked(message: str, *args) -> str:
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, message, args, None)
    RedactEmails().filter(record)
    return record.getMessage()


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("spelling", ["raw", "percent-encoded"])
def test_an_address_in_an_access_log_line_is_masked(address, spelling):
    path_part = address if spelling == "raw" else quote(address, safe="")
    line = masked('%s "%s %s" %s %s %sms', "127.0.0.1", "GET", f"/api/v1/contacts/{path_part}/kyc", 200, 120, 3)
    head, tail = '127.0.0.1 "GET /api/v1/contacts/', '/kyc" 200 120 3ms'
    assert line.startswith(head) and line.endswith(tail), line
    assert re.fullmatch(r"\[email\](/\[email\])*", line[len(head):-len(tail)]), line  # nothing of it left


@pytest.mark.parametrize("address", [a for a in ADDRESSES if "/" not in a])  # in free text, "/" ends a word
def test_an_address_in_a_message_is_masked(address):
    assert masked("lookup of %s failed", address) == "lookup of [email] failed"
    assert masked("lookup of <%s>, then", address) == "lookup of <[email]>, then"


def test_lines_without_an_address_are_unchanged():
    line = '127.0.0.1 "POST /webhooks/persona" 200 51 2ms'
    assert masked(line) == line
