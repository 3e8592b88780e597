"""The gateway: HTTP, SMTP, scheduler, store, pipeline and CLI (all the I/O)."""
