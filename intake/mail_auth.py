"""Who really sent a message: the From domain counts only when it is authenticated (issue 15, finding 5).

Two ways, tried in this order:

- a trusted relay's `Authentication-Results` header (RFC 8601) saying `dmarc=pass` for the From domain.
  Only the relay named by `authserv_id` is trusted, and only its topmost header(s): anyone can write an
  `Authentication-Results` header into the mail they send, but it ends up *below* the relay's own;
- a DKIM signature that the intake verifies itself (dkimpy), whose `d=` domain is aligned with the From
  domain (relaxed alignment, see `aligned`), which signs the From header and covers the whole body.

`authenticate` reads headers and hashes the body; it never parses the MIME structure. Its only I/O is the
DKIM key lookup through `dnsfunc` (dkimpy's own resolver by default; tests pass a local function).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

import authres
import dkim

from intake.email_parsing.headers import sender_address

log = logging.getLogger(__name__)

DnsFunc = Callable[..., bytes | None]  # dkimpy's: (name: bytes, timeout=5) -> the TXT record, or None
HEAD_BYTES = 256 * 1024  # where the header section must end; further on is body
MAX_SIGNATURES = 5  # DKIM signatures tried per message: each one costs a DNS lookup and a body hash


@dataclass(frozen=True, slots=True)
class Verdict:
    """`sender` is the From address (None when absent or ambiguous); `domain` its domain, set only when
    authenticated; `reason` a stable code: how it was authenticated, or why not."""

    sender: str | None
    domain: str | None
    method: str | None  # "relay" | "dkim" | None
    reason: str
    temporary: bool = False  # a DNS failure: ask again later rather than decide

    @property
    def authenticated(self) -> bool:
        return self.domain is not None


# Why a message was kept without being acted upon, as the district reads it (status refused).
REFUSAL_REASONS: dict[str, tuple[str, str]] = {
    "sender_not_registered": ("อีเมลผู้ส่งไม่ได้ลงทะเบียนไว้กับโรงเรียนใด",
                              "The sender's address is registered for no school"),
    "no_sender": ("ไม่มีผู้ส่ง (From) ที่อ่านได้", "No readable sender (From)"),
    "no_authentication": ("ยืนยันตัวผู้ส่งไม่ได้: ไม่มีลายเซ็น DKIM และไม่มีผลตรวจจากเซิร์ฟเวอร์อีเมลของเขต",
                          "Sender not authenticated: no DKIM signature and no verdict of the district's relay"),
    "dkim_fail": ("ลายเซ็น DKIM ไม่ถูกต้อง (อีเมลอาจถูกปลอมหรือถูกแก้ไขระหว่างทาง)",
                  "The DKIM signature does not verify (forged, or changed on the way)"),
    "dkim_not_aligned": ("ลายเซ็น DKIM เป็นของโดเมนอื่น ไม่ใช่โดเมนของผู้ส่ง",
                         "Signed (DKIM) by another domain than the sender's"),
    "dkim_from_not_signed": ("ลายเซ็น DKIM ไม่ครอบคลุมช่องผู้ส่ง (From)", "The DKIM signature does not cover From"),
    "dkim_partial_body": ("ลายเซ็น DKIM ครอบคลุมเนื้อความเพียงบางส่วน", "The DKIM signature covers part of the body only"),
    "dkim_unreadable": ("อ่านหัวอีเมลหรือลายเซ็น DKIM ไม่ได้", "Headers or DKIM signature unreadable"),
    "relay_dmarc_fail": ("เซิร์ฟเวอร์อีเมลของเขตตรวจแล้วว่าผู้ส่งไม่ผ่าน DMARC", "The district's relay found DMARC failing"),
    "relay_no_dmarc": ("เซิร์ฟเวอร์อีเมลของเขตไม่ได้ตรวจ DMARC", "The district's relay did not check DMARC"),
    "not_authenticated": ("ยืนยันตัวผู้ส่งไม่ได้", "Sender not authenticated"),
}


def refusal_reason(code: str) -> tuple[str, str]:
    return REFUSAL_REASONS.get(code, ("ไม่ได้ดำเนินการ", "Not processed"))


def header_values(raw: bytes) -> list[tuple[str, str]]:
    """The header fields in order, unfolded; the body is not read."""
    head = raw[:HEAD_BYTES]
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in head:
            head = head.split(separator, 1)[0]
            break
    msg = BytesHeaderParser(policy=compat32).parsebytes(head + b"\n\n")
    return [(str(name).lower(), re.sub(r"\r?\n[ \t]", " ", str(value)).strip()) for name, value in msg.raw_items()]


def from_sender(headers: list[tuple[str, str]]) -> str | None:
    sender = sender_address([value for name, value in headers if name == "from"])
    # undecodable bytes in a From header arrive as lone surrogates (and control characters prove nothing either):
    # no school is registered under such an address, and the database cannot even store it
    return sender if sender is not None and sender.isprintable() else None


def aligned(signer: str, from_domain: str) -> bool:
    """Relaxed alignment without a public-suffix list: the signing domain is the From domain, a parent of it
    (`tuayang.ac.th` signs for `dmc.tuayang.ac.th`) or a subdomain of it (`mail.tuayang.ac.th` for
    `tuayang.ac.th`). A parent must have two labels at least: no top-level domain signs for its children.
    Stricter than DMARC for sibling subdomains, which schools do not use."""
    signer, from_domain = signer.lower().rstrip("."), from_domain.lower().rstrip(".")
    if signer == from_domain:
        return True
    if from_domain.endswith("." + signer):
        return signer.count(".") >= 1
    return signer.endswith("." + from_domain) and from_domain.count(".") >= 1


def relay_verdict(headers: list[tuple[str, str]], sender: str, authserv_id: str) -> Verdict | None:
    """The trusted relay's word, or None when it has said nothing. Its header(s) are the topmost ones
    with its authserv-id: from the first such header down to the next Received header or the next
    Authentication-Results header of another server, the results count; anything below may have been
    written by the sender. Every dmarc result among them must pass, for the From domain."""
    domain = sender.rsplit("@", 1)[1]
    results: list = []
    started = False
    for name, value in headers:
        if started and name == "received":
            break
        if name != "authentication-results":
            continue
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(value)
        except Exception:  # noqa: BLE001  a malformed header proves nothing (authres raises its own and others)
            if started:
                break
            continue
        if (parsed.authserv_id or "").lower() != authserv_id.lower():
            if started:
                break
            continue
        started = True
        results += [r for r in parsed.results if str(r.method).lower() == "dmarc"]
    if not started:
        return None
    if not results:
        return Verdict(sender, None, None, "relay_no_dmarc")
    for result in results:
        header_from = {(p.type, p.name): str(p.value).lower() for p in result.properties}.get(("header", "from"))
        if str(result.result).lower() != "pass" or header_from != domain:
            return Verdict(sender, None, None, "relay_dmarc_fail")
    return Verdict(sender, domain, "relay", "relay_dmarc_pass")


def dkim_verdict(raw: bytes, sender: str, dnsfunc: DnsFunc | None) -> Verdict:
    domain = sender.rsplit("@", 1)[1]
    try:
        checker = dkim.DKIM(raw, minkey=1024, timeout=5)
        count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    except Exception:  # noqa: BLE001  dkimpy raises several kinds on broken headers
        return Verdict(sender, None, None, "dkim_unreadable")
    if not count:
        return Verdict(sender, None, None, "no_authentication")
    reason = "dkim_fail"
    for idx in range(min(count, MAX_SIGNATURES)):
        try:
            ok = checker.verify(idx=idx, dnsfunc=dnsfunc) if dnsfunc else checker.verify(idx=idx)
        except dkim.DnsTimeoutError:
            return Verdict(sender, None, None, "dkim_dns_unavailable", temporary=True)
        except dkim.DKIMException as exc:
            log.info("intake: DKIM signature %d of %s not verified (%s)", idx, domain, type(exc).__name__)
            continue
        except Exception as exc:  # noqa: BLE001  a hostile signature must not end the intake
            log.info("intake: DKIM signature %d of %s unreadable (%s)", idx, domain, type(exc).__name__)
            continue
        if not ok:
            continue
        fields = checker.signature_fields
        signer = (checker.domain or b"").decode("ascii", "replace")
        if not aligned(signer, domain):
            reason = "dkim_not_aligned"
        elif b"from" not in checker.include_headers:
            reason = "dkim_from_not_signed"
        elif b"l" in fields:  # a body length limit lets anyone append a part below the signed text
            reason = "dkim_partial_body"
        else:
            return Verdict(sender, domain, "dkim", "dkim_pass")
    return Verdict(sender, None, None, reason)


def authenticate(raw: bytes, *, authserv_id: str | None, dnsfunc: DnsFunc | None = None) -> Verdict:
    """The verdict on one received message. Never raises."""
    try:
        headers = header_values(raw)
    except Exception:  # noqa: BLE001
        return Verdict(None, None, None, "no_sender")
    sender = from_sender(headers)
    if sender is None:
        return Verdict(None, None, None, "no_sender")
    relay = relay_verdict(headers, sender, authserv_id) if authserv_id else None
    if relay is not None and relay.authenticated:
        return relay
    if not any(name == "dkim-signature" for name, _ in headers):  # no need to read the body
        verdict = Verdict(sender, None, None, "no_authentication")
    else:
        verdict = dkim_verdict(raw, sender, dnsfunc)
    # without a usable signature, the relay's failure is the better reason to show the district
    return relay if relay is not None and verdict.reason == "no_authentication" else verdict


__all__ = ["REFUSAL_REASONS", "DnsFunc", "Verdict", "aligned", "authenticate", "from_sender", "header_values",
           "refusal_reason"]
