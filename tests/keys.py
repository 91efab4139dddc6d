"""DKIM keys made at run time for the tests: (private key as dkimpy takes it, the DNS
record that publishes the public key)."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def rsa_key(bits: int = 2048) -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def ed_key() -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = base64.b64encode(
        key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return private, "v=DKIM1; k=ed25519; p=" + base64.b64encode(public).decode()


RSA_KEY = rsa_key()
ED_KEY = ed_key()
