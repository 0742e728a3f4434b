from rag.documents.chunking import chunk_document
from rag.documents.parsing import ParseLimits, parse_bytes
from rag.llm.tokens import get_tokenizer

TOK = get_tokenizer()


def _doc(text: str, name: str = "d.md"):
    return parse_bytes(text.encode(), name, ParseLimits())


def test_every_chunk_knows_its_provenance_and_span() -> None:
    text = "# Guide\n\nIntro paragraph.\n\n## Ports\n\nOllama listens on 11434.\n\nLM Studio on 1234.\n"
    doc = _doc(text)
    chunks = chunk_document(doc, "guides/d.md", TOK, chunk_tokens=64, overlap=8)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.source == "guides/d.md"
        assert text[c.start : c.end] == c.text
        assert c.n_tokens == TOK.count(c.text)
    assert [c.heading for c in chunks] == ["Guide", "Guide › Ports"]
    assert "11434" in chunks[1].text and "1234" in chunks[1].text


def test_chunks_respect_the_token_budget_and_never_cross_sections() -> None:
    paragraphs = "\n\n".join(f"Paragraph {i} says something about topic {i} in a few words." for i in range(40))
    text = f"# A\n\n{paragraphs}\n\n# B\n\nShort tail."
    chunks = chunk_document(_doc(text), "d.md", TOK, chunk_tokens=60, overlap=16)
    assert len(chunks) > 5
    assert all(c.n_tokens <= 60 for c in chunks)
    assert chunks[-1].heading == "B" and chunks[-1].text.strip().endswith("Short tail.")
    assert all("# B" not in c.text for c in chunks if c.heading == "A")


def test_consecutive_chunks_overlap_by_whole_paragraphs() -> None:
    paragraphs = "\n\n".join(f"Fact number {i} is stated here." for i in range(30))
    chunks = chunk_document(_doc(paragraphs, "d.txt"), "d.txt", TOK, chunk_tokens=40, overlap=12)
    for first, second in zip(chunks, chunks[1:]):
        last_paragraph = first.text[first.text.rfind("Fact number") :]
        assert second.text.startswith(last_paragraph)  # carried over whole, not cut mid-sentence
        assert second.start < first.end


def test_zero_overlap_gives_disjoint_chunks_covering_everything() -> None:
    paragraphs = "\n\n".join(f"Line {i} of the text." for i in range(50))
    chunks = chunk_document(_doc(paragraphs, "d.txt"), "d.txt", TOK, chunk_tokens=32, overlap=0)
    for first, second in zip(chunks, chunks[1:]):
        assert second.start > first.end
    joined = " ".join(c.text for c in chunks)
    assert all(f"Line {i} of" in joined for i in range(50))


def test_a_paragraph_longer_than_a_chunk_is_split_at_sentences() -> None:
    paragraph = " ".join(f"Sentence {i} carries a little meaning." for i in range(30))
    chunks = chunk_document(_doc(paragraph, "d.txt"), "d.txt", TOK, chunk_tokens=40, overlap=0)
    assert len(chunks) > 3
    assert all(c.text.rstrip().endswith(".") for c in chunks)
    assert all(c.n_tokens <= 40 for c in chunks)


def test_a_sentence_longer_than_a_chunk_is_split_at_token_boundaries() -> None:
    blob = "x" * 3 + " ".join(["alpha beta gamma delta"] * 200)  # no sentence end at all
    chunks = chunk_document(_doc(blob, "d.txt"), "d.txt", TOK, chunk_tokens=50, overlap=0)
    assert len(chunks) >= 10
    assert all(c.n_tokens <= 51 for c in chunks)  # boundary re-tokenisation may merge one token
    assert "".join(c.text for c in chunks).replace(" ", "") == blob.replace(" ", "")


def test_pdf_chunks_cite_their_page() -> None:
    from rag.fakes.samples import make_pdf

    doc = parse_bytes(make_pdf(["first page text", "second page text"]), "r.pdf", ParseLimits())
    chunks = chunk_document(doc, "r.pdf", TOK, chunk_tokens=64, overlap=0)
    assert [(c.page, c.text) for c in chunks] == [(1, "first page text"), (2, "second page text")]
    assert chunks[1].location == "r.pdf › page 2"
