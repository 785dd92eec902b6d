"""Metrics on hand-made cases with known answers, and agreement with jiwer and seqeval."""

import random

import jiwer
import pytest
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from hf_whisper_context.metrics import (
    capitalization_scores,
    compute_all,
    entity_scores,
    load,
    punctuation_scores,
    summary,
    word_error_rate,
)
from hf_whisper_context.metrics.alignment import align, clean, mark, words
from hf_whisper_context.metrics.entities import aligned_iob, tagged_words
from hf_whisper_context.metrics.wer import whisper_normalizer

REF = "[PERSON]Albert Einstein[/PERSON] was born in [GPE]Ulm[/GPE], on [DATE]14 March 1879[/DATE]."


def test_identical_texts_score_perfectly():
    texts = [REF, "He said: “Yes!” Then, on [DATE]May 5[/DATE], he left; why?", "", "[URL]x.org[/URL]"]
    scores = summary(compute_all(texts, texts, entity_mode="tags"))
    assert scores == {"wer": 0.0, "wer_orthographic": 0.0, "entity_f1": 1.0, "comma_f1": 1.0, "period_f1": 1.0,
                      "punctuation_error_rate": 0.0, "capitalization_f1": 1.0}  # fmt: skip


def test_clean_up_is_shared():
    assert clean("[PERSON]Bob[/PERSON], “hi” <|1.00|>there") == 'Bob, "hi" there'
    assert words("A – B .") == ["A", "B"]  # a lone dash or mark is no word
    assert mark('end."') == "." and mark("(word)") == "" and mark("Paris,") == ","


def test_missing_comma():
    result = punctuation_scores(["Paris, France is big."], ["Paris France is big."])
    assert result["per_mark"][","] == {"precision": 1.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 1,
                                       "reference_count": 1}  # fmt: skip
    assert result["per_mark"]["."]["f1"] == 1.0
    assert result["punctuation_error_rate"] == pytest.approx(1 / 2)


def test_substituted_mark_is_a_miss_and_a_false_alarm():
    result = punctuation_scores(["Stop, now."], ["Stop; now."])
    assert result["per_mark"][","]["fn"] == 1 and result["per_mark"][";"]["fp"] == 1
    assert result["punctuation_error_rate"] == pytest.approx(1 / 2)  # one substitution, counted once


def test_marks_on_inserted_and_deleted_words():
    result = punctuation_scores(["We left, early."], ["We left early. Yes, really."])
    assert result["per_mark_all_words"][","]["fp"] == 1  # "Yes," was inserted
    assert result["per_mark"][","]["fp"] == 0  # ... and is not an aligned pair
    deleted = punctuation_scores(["One, two."], ["two."])
    assert deleted["per_mark_all_words"][","]["fn"] == 1 and deleted["per_mark"][","]["fn"] == 0


def test_wrong_case():
    result = capitalization_scores(["The cat met Bob in Paris."], ["the cat met bob in paris. Extra"])
    assert (result["tp"], result["fp"], result["fn"]) == (0, 0, 3)
    over = capitalization_scores(["the cat"], ["The Cat"])
    assert over["precision"] == 0.0 and over["fp"] == 2


def test_split_entity():
    ref = "[PERSON]Bob Dylan[/PERSON] sang."
    hyp = "[PERSON]Bob[/PERSON] [PERSON]Dylan[/PERSON] sang."
    result = entity_scores([ref], [hyp])
    assert result["micro"]["precision"] == 0.0 and result["micro"]["recall"] == 0.0
    assert result["formatting"]["PERSON"] == {"jaro_winkler": 1.0, "count": 1}  # the words themselves are right


def test_inserted_entity():
    result = entity_scores(["I saw him."], ["I saw [PERSON]him[/PERSON]."])
    assert result["micro"]["precision"] == 0.0 and result["micro"]["support"] == 0


def test_numeric_entity_with_one_wrong_digit():
    result = entity_scores(["In [DATE]1879[/DATE] it rained."], ["In [DATE]1878[/DATE] it rained."])
    jaro = (3 / 4 + 3 / 4 + 3 / 3) / 3  # DATE is a text type: Jaro-Winkler, common prefix of 3
    assert result["formatting"]["DATE"]["jaro_winkler"] == pytest.approx(jaro + 3 * 0.1 * (1 - jaro))
    money = entity_scores(["It cost [MONEY]$1,250[/MONEY]."], ["It cost [MONEY]$1,260[/MONEY]."])
    assert money["formatting"]["MONEY"] == {"cer": pytest.approx(1 / 6), "count": 1}
    assert money["micro"]["f1"] == 1.0  # same span and type: the entity is found, its form is wrong


def test_missing_entity_and_neighbours():
    ref = "Met [PERSON]Ann[/PERSON] and [PERSON]Bo Li[/PERSON] today."
    result = entity_scores([ref], ["Met and Bo Li today."])
    assert result["formatting"]["PERSON"]["count"] == 2
    assert result["formatting"]["PERSON"]["jaro_winkler"] == pytest.approx(0.5)  # Ann: 0, "Bo Li": 1, not "and Bo"


def test_empty_sides():
    assert word_error_rate([""], [""])["wer"] == 0.0
    assert word_error_rate([""], ["surprise words"]) == {"wer": 1.0, "substitutions": 0, "deletions": 0,
                                                        "insertions": 2, "hits": 0, "reference_words": 0}  # fmt: skip
    assert word_error_rate(["two words"], [""])["wer"] == 1.0
    assert summary(compute_all([REF], ["   "], entity_mode="tags"))["entity_f1"] == 0.0
    assert entity_scores(["plain"], ["text"])["micro"]["f1"] == 1.0  # no entity on either side
    assert align([], ["a"])[0].op == "insert"


def test_bad_tags_and_other_scripts():
    assert tagged_words("[PERSON]Bob and [GPE]Paris[/GPE] [/ORG]x")[1] == ["B-PERSON", "I-PERSON", "B-GPE", "O"]
    assert tagged_words("[FOO]x[/FOO]") == (["x"], ["O"])  # unknown tags: text kept, no entity
    result = compute_all(["Hello world."], ["Привет мир."], entity_mode="tags")
    assert result["wer_orthographic"]["wer"] == 1.0
    odd = compute_all(["¿Qué tal, amigo?"], ["¿Qué tal， amigo?"], entity_mode="tags")  # fullwidth comma
    assert odd["wer_normalised"]["wer"] == 0.0 and odd["punctuation"]["per_mark"][","]["fn"] == 1


def _random_text(rng, vocab):
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 12)))


def test_normalised_wer_equals_jiwer_corpus_wer():
    rng = random.Random(0)
    vocab = "the a cat sat on mat colour colours 1879 twenty-one Mr. don't Paris, London. Hello! organise".split()
    refs = [_random_text(rng, vocab) for _ in range(300)]
    hyps = [_random_text(rng, vocab) if rng.random() > 0.1 else "" for _ in range(300)]
    normalizer = whisper_normalizer()
    pairs = [(normalizer(r), normalizer(h)) for r, h in zip(refs, hyps, strict=True)]
    pairs = [(r, h) for r, h in pairs if r.strip() and h.strip()]  # jiwer refuses empty strings
    ours = word_error_rate([r for r, _ in pairs], [h for _, h in pairs], "normalised")["wer"]
    assert abs(ours - jiwer.wer([r for r, _ in pairs], [h for _, h in pairs])) < 1e-9
    assert normalizer("colour organise") == "color organize"  # the spelling map is in use


def test_entity_f1_equals_seqeval_on_the_aligned_iob():
    refs = [REF, "[ORG]NASA[/ORG] sent [PRODUCT]Apollo 11[/PRODUCT] in [DATE]1969[/DATE].", "No entity here."]
    hyps = [
        "[PERSON]Albert[/PERSON] Einstein was born in [GPE]Ulm[/GPE], on 14 March 1879.",
        "[ORG]NASA[/ORG] sent [PRODUCT]Apollo[/PRODUCT] 11 in [DATE]1969[/DATE]!",
        "No [GPE]entity[/GPE].",
    ]
    ours = entity_scores(refs, hyps)["micro"]["f1"]
    aligned = [aligned_iob(r, h) for r, h in zip(refs, hyps, strict=True)]
    theirs = f1_score([a["y_true"] for a in aligned], [a["y_pred"] for a in aligned], mode="strict", scheme=IOB2)
    assert ours == pytest.approx(theirs) and 0 < ours < 1


def test_evaluate_modules_load_from_local_paths():
    wer = load("wer")
    assert wer.compute(references=["a b c d"], predictions=["a b x d"])["wer"] == 0.25
    assert load("capitalization").compute(references=["Bob"], predictions=["bob"])["fn"] == 1
    with pytest.raises(ValueError, match="known: wer, punctuation"):
        load("bleu")


@pytest.mark.slow
def test_untagged_hypotheses_are_tagged_by_the_same_tagger():
    result = compute_all([REF], ["Albert Einstein was born in Ulm, on 14 March 1879."])
    assert result["entities"]["mode"] == "tagger" and result["entities"]["micro"]["f1"] == 1.0
    plain = "Albert Einstein was born in Ulm, on 14 March 1879."  # untagged references are tagged the same way
    both = compute_all([plain], [plain])["entities"]
    assert both["mode"] == "tagger" and both["micro"]["f1"] == 1.0 and both["micro"]["support"] == 3


@pytest.mark.slow
def test_compute_metrics_for_the_trainer(tiny_en):
    import numpy as np
    from transformers import EvalPrediction, WhisperTokenizer

    from hf_whisper_context.metrics import compute_metrics_factory

    tokenizer = WhisperTokenizer.from_pretrained(tiny_en)
    ref = tokenizer(" Albert Einstein was born in Ulm, in 1879.").input_ids
    hyp = tokenizer(" albert einstein was born in ulm in 1879.").input_ids
    width = max(len(ref), len(hyp))
    labels = np.array([ref + [-100] * (width - len(ref))])
    predictions = np.array([hyp + [tokenizer.pad_token_id] * (width - len(hyp))])
    scores = compute_metrics_factory(tokenizer)(EvalPrediction(predictions=predictions, label_ids=labels))
    assert scores["wer"] == 0.0 and scores["wer_orthographic"] > 0 and scores["capitalization_f1"] < 1.0
    assert scores["comma_f1"] == 0.0 and scores["period_f1"] == 1.0
