"""burnbox: a self-hosted disposable email service."""

__version__ = "0.1.0"
