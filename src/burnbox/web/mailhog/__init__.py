"""MailHog's API over sink mode's shared view (docs/mailhog.md)."""
