"""Email intake of national-ID corrections (R4): parsing (pure), SMTP and IMAP in, store raw first."""
