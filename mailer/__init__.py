"""Outgoing mail: Jinja2 templates, a transactional outbox, aiosmtplib delivery, and the embedded catcher."""
