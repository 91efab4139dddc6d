"""Where mail is kept. `base` is the contract; each backend implements it."""
