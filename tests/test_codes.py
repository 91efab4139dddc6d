"""Code and link extraction on a labelled set; precision and recall are printed."""

from __future__ import annotations

import json
from pathlib import Path

from burnbox import codes, mime
from tests.helpers import corpus_messages

LABELLED = Path(__file__).parent / "data" / "codes"


def extract(raw: bytes) -> codes.Extracted:
    view = mime.full_view(raw)
    return codes.extract(mime.overview(raw).subject, view.text, view.html)


def score(kind: str) -> tuple[float, float, list[str]]:
    """(precision, recall, mistakes) over the labelled set plus the whole corpus,
    where no corpus message is expected to carry a code or an action link."""
    cases = [
        (LABELLED / c["file"], c[kind]) for c in json.loads((LABELLED / "labels.json").read_text())
    ]
    corpus = corpus_messages()
    assert len(cases) >= 10
    assert len(corpus) > 150
    cases += [(path, []) for path in corpus]
    found = expected = right = 0
    mistakes = []
    for path, wanted in cases:
        result = extract(path.read_bytes())
        got = result.codes if kind == "codes" else [link.url for link in result.links]
        found += len(got)
        expected += len(wanted)
        right += len(set(got) & set(wanted))
        if set(got) != set(wanted):
            mistakes.append(f"{path.name}: got {got}, expected {wanted}")
    return right / max(found, 1), right / max(expected, 1), mistakes


def test_codes_precision_and_recall() -> None:
    precision, recall, mistakes = score("codes")
    print(f"codes: precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95, mistakes
    assert recall >= 0.9, mistakes


def test_links_precision_and_recall() -> None:
    precision, recall, mistakes = score("links")
    print(f"links: precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95, mistakes
    assert recall >= 0.9, mistakes


def test_newsletters_and_receipts_yield_no_codes() -> None:
    for name in (
        "news-prices",
        "receipt",
        "shipping",
        "calendar",
        "invoice-de",
        "newsletter-long",
        "social-notice",
    ):
        assert extract((LABELLED / f"{name}.eml").read_bytes()).codes == [], name


def test_link_text_wins_over_url() -> None:
    html = (
        "<a href='https://x.test/verify-later'>Read our blog</a>"
        "<a href='https://x.test/go?id=1'>Verify your email</a>"
    )
    links = codes.extract("", "", html).links
    assert [link.url for link in links] == ["https://x.test/go?id=1", "https://x.test/verify-later"]
