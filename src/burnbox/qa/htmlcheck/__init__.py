"""Mailpit's HTML check: which of caniemail.com's features a message's HTML and CSS use,
and how well each email client supports them.

The support data is caniemail's own, shipped as data (`caniemail.json`, from npm
`caniemail`, MIT: `caniemail-LICENSE`; scripts/update_caniemail.py refreshes it). What to
look for is derived from each feature's slug and title (probes.py), so new features in
the data are checked without code; the few the data names irregularly are listed there.
"""
