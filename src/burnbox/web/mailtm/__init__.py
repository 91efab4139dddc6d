"""mail.tm's API over burnbox's inboxes, on its own listener (docs/mailtm.md)."""
