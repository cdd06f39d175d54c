"""The intake's pure sender checks (intake/mail_auth.py), apart from the DKIM and relay verdicts that the
trust tests drive end to end."""

from __future__ import annotations

import pytest

from intake.mail_auth import aligned, from_sender


def test_the_from_address_is_read_from_the_from_header():
    assert from_sender([("to", "idfix@district.example"), ("from", "โรงเรียน <dmc@tuayang.ac.th>")]) == "dmc@tuayang.ac.th"


@pytest.mark.parametrize("value", ["!@!.\udc80", "dmc@tuayang.ac.th\x00", "d\x1bmc@tuayang.ac.th"])
def test_a_from_address_with_undecodable_bytes_or_control_characters_is_no_sender(value):
    # found by tests/properties/test_intake_outcomes.py: the surrogate reached the database lookup and raised
    assert from_sender([("from", value)]) is None


@pytest.mark.parametrize("signer, domain, ok", [
    ("tuayang.ac.th", "tuayang.ac.th", True),
    ("tuayang.ac.th", "dmc.tuayang.ac.th", True),   # a parent signs for its subdomain
    ("mail.tuayang.ac.th", "tuayang.ac.th", True),  # a subdomain for its parent
    ("ac.th", "tuayang.ac.th", True),
    ("th", "tuayang.ac.th", False),                 # no top-level domain signs for its children
    ("evil.example", "tuayang.ac.th", False),
    ("a.tuayang.ac.th", "b.tuayang.ac.th", False),  # sibling subdomains: stricter than DMARC
])
def test_dkim_alignment_with_the_from_domain(signer, domain, ok):
    assert aligned(signer, domain) is ok
