"""dmcflow: application wiring (settings, Temporal client, console command, local stack)."""
