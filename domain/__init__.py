"""Pure domain rules of DMC round 3: no I/O, no Temporal, no database, no HTTP."""
