from __future__ import annotations

import pytest

from burnbox.addressing import AddressError, DomainPolicy, parse_address, parse_path


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("User@Example.ORG", "user@example.org"),
        ("first.last+tag@localhost", "first.last+tag@localhost"),
        ("Ünïcode@Bücher.example", "ünïcode@xn--bcher-kva.example"),
        ("e\u0301@localhost", "é@localhost"),  # NFC
        ("a@localhost.", "a@localhost"),
    ],
)
def test_normal_form(text: str, normal: str) -> None:
    assert str(parse_address(text)) == normal


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@localhost",
        "a@",
        "a@-x.test",
        "a@x..test",
        "a b@localhost",
        "a@[1.2.3.4]",
        "a%b@localhost",
        "a!b@localhost",
        "../x@localhost",
        "a\u200b@localhost",
        "a\u0000@x.test",
        "x" * 65 + "@localhost",
        "a@" + "b" * 64 + ".test",
        "=?utf-8?b?QQ==?=@localhost",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


def test_path_forms() -> None:
    assert str(parse_path("<a@localhost>", utf8_allowed=False)) == "a@localhost"
    assert str(parse_path("<@r1,@r2:a@localhost>", utf8_allowed=False)) == "a@localhost"
    with pytest.raises(AddressError) as refused:
        parse_path("<ü@localhost>", utf8_allowed=False)
    assert refused.value.needs_utf8
    with pytest.raises(AddressError):
        parse_path("a@localhost", utf8_allowed=False)


def test_domain_policy() -> None:
    policy = DomainPolicy(("Example.ORG", "*.wild.test", "b.test"))
    assert policy.accepts("example.org")
    assert policy.accepts("a.wild.test")
    assert policy.accepts("a.b.wild.test")
    assert not policy.accepts("wild.test")
    assert not policy.accepts("evilwild.test")
    assert not policy.accepts("example.org.evil.test")
    assert policy.creatable == ("example.org", "b.test")  # in the order configured
    assert DomainPolicy(("*.wild.test",)).creatable == ("wild.test",)
