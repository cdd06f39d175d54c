"""Temporal activities: every side effect (database, mail, Temporal calls on behalf of a round)."""
