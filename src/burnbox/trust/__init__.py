"""Who really sent a message (SPF, DKIM, DMARC, ARC) and which senders are kept out."""
