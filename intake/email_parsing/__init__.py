"""Reading an ID-correction email (R4, shared/docs/id-correction-email.md): pure parsing only.

`message.parse_message(raw)` turns the bytes of one received message into a `ParsedMessage`
(domain.correction_requests): who sent it (the bare address; the display name proves nothing), its
Message-ID, the request blocks found in the body and the attachments, with the refusals that can be
decided *without* a database:

- message level (`ParsedMessage.problem`): `too_large`, `unreadable`, `no_request_block`, `no_evidence`;
- request level (`CorrectionRequest.problem`): `missing_field`, the `domain.ids` codes for a malformed
  ID or school code (e.g. `national_id_check_digit`), `new_id_not_national_id`, `same_id`.

Their wording is in mailer.id_correction_refusals, beside the reply template. The checks that need the
roster or the registry of addresses belong to the caller (db.id_corrections).

The modules, in reading order: `decoding` (charsets, RFC 2047) -> `headers` (the envelope) -> `mime_parts`
(body text and attachments) -> `html_text`, `tables`, `quoting` (the body as lines) -> `labels`,
`request_blocks` (lines to requests) -> `message` (the whole outcome).

No I/O, no network, no rendering: HTML is only walked as a tree for its text, attachments are only
hashed and sniffed.
"""
