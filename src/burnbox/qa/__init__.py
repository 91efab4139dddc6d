"""The QA sink's tools beyond reading mail (Mailpit's): SMTP faults on request (chaos),
release through the operator's relay, SpamAssassin's verdict and the HTML support check."""
