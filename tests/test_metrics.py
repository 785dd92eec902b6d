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
from hf_whisper_context.metrics.alignment import align, align_texts, clean, marks, parse, words
from hf_whisper_context.metrics.entities import aligned_iob
from hf_whisper_context.metrics.wer import whisper_normalizer

from .metric_cases import CASES

REF = "[PERSON]Albert Einstein[/PERSON] was born in [GPE]Ulm[/GPE], on [DATE]14 March 1879[/DATE]."


def test_identical_texts_score_perfectly():
    texts = [REF, "He said: “Yes!” Then, on [DATE]May 5[/DATE], he left; why?", "", "[URL]x.org[/URL]"]
    scores = summary(compute_all(texts, texts, entity_mode="tags"))
    assert scores == {"wer": 0.0, "wer_orthographic": 0.0, "entity_f1": 1.0, "comma_f1": 1.0, "period_f1": 1.0,
                      "punctuation_error_rate": 0.0, "capitalization_f1": 1.0, "loops": 0, "insertion_bursts": 0,
                      "deletion_runs": 0}  # fmt: skip


def test_clean_up_is_shared():
    assert clean("[PERSON]Bob[/PERSON], “hi” <|1.00|>there") == 'Bob, "hi" there'
    assert words("A – B .") == ["A", "B."]  # a lone dash is no word; a lone mark counts on the word before it
    assert marks('end."') == {"."} and marks("(word)") == set() and marks("Paris,") == {","}
    assert marks("stop!;") == {"!", ";"} and marks("U.S.,") == {".", ","}


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
    assert entity_scores(["plain"], ["text"])["micro"] | {"support": 0} == entity_scores(["plain"], ["text"])["micro"]
    assert entity_scores(["plain"], ["text"])["micro"]["f1"] == 1.0  # no entity on either side
    assert align([], ["a"])[0].op == "insert"


def test_bad_tags_and_other_scripts():
    assert parse("[PERSON]Bob and [GPE]Paris[/GPE] [/ORG]x")[1] == ["B-PERSON", "I-PERSON", "B-GPE", "O"]
    assert parse("[FOO]x[/FOO]") == (["[FOO]x[/FOO]"], ["O"])  # unknown tags are text: no entity
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
    aligned = [aligned_iob(align_texts(r, h)) for r, h in zip(refs, hyps, strict=True)]
    theirs = f1_score([t for t, _ in aligned], [p for _, p in aligned], mode="strict", scheme=IOB2)
    assert ours == pytest.approx(theirs) and 0 < ours < 1


def test_evaluate_modules_load_from_local_paths():
    wer = load("long_wer")  # not "wer": the canonical module's name, whose compute() returns a float
    assert wer.compute(references=["a b c d"], predictions=["a b x d"])["wer"] == 0.25
    assert all(load(name).description for name in ("long_wer", "punctuation", "entities"))  # module cards
    assert load("capitalization").compute(references=["Bob"], predictions=["bob"])["fn"] == 1
    with pytest.raises(ValueError, match="known: long_wer, punctuation"):
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


# --- the cases of the metrics-trust issue, each failing before its fix -------------------------------------------


def test_an_unbalanced_bracket_erases_nothing():
    middle = " ".join(f"word{c}" for c in "abcdefghijklmnopqrstuvwxyz" * 4)
    ref = f"A [note] one. {middle} B [two] end."
    hyp = f"A [note one. {middle} B [two] end."  # the hypothesis lost one "]"
    assert word_error_rate([ref], [hyp], "normalised")["wer"] == 0.0


def test_spoken_parentheses_are_words():
    ref, hyp = "Kimono (着物, lit. thing to wear) is a garment.", "Kimono is a garment."
    result = word_error_rate([ref], [hyp], "normalised")
    assert (result["wer"], result["deletions"], result["reference_words"]) == (5 / 9, 5, 9)


def test_a_gap_inside_an_entity_splits_it():
    ref = "[PERSON]David Bowie[/PERSON] sang in [GPE]Japan[/GPE]."
    hyp = "[PERSON]David[/PERSON] Robert Bowie sang in [GPE]Japan[/GPE]."
    result = entity_scores([ref], [hyp])
    assert result["micro"]["f1"] == 0.5 and result["per_type"]["PERSON"]["f1"] == 0.0
    # the same gap on the other side: a reference word missing inside a hypothesis entity
    deleted = entity_scores(["[PERSON]David[/PERSON] Robert Bowie sang."], ["[PERSON]David Bowie[/PERSON] sang."])
    assert deleted["micro"]["f1"] == 0.0
    # a word inserted next to an entity (not between two of its words) leaves it whole
    assert entity_scores([ref], ["Well [PERSON]David Bowie[/PERSON] sang in [GPE]Japan[/GPE]."])["micro"]["f1"] == 1


def test_paper_tag_syntax_is_read():
    ref = "<PERSON>Bob Dylan</PERSON> sang in <GPE>Paris</GPE>."
    scores = summary(compute_all([ref], ["[PERSON]Bob Dylan[/PERSON] sang in [GPE]Paris[/GPE]."], "tags"))
    assert scores["entity_f1"] == 1.0 and scores["wer_orthographic"] == 0.0 and scores["capitalization_f1"] == 1.0
    assert words("See section [A] now.") == ["See", "section", "[A]", "now."]  # not a type: a word


def test_capitalization_of_an_empty_hypothesis_is_not_perfect():
    result = capitalization_scores(["The Cat sat."], [""])
    assert result["f1"] == 0.0 and result["pairs"] == 0 and result["defined"] is False
    assert capitalization_scores([""], [""])["f1"] == 1.0  # identical empty texts


def test_entity_mode_is_recorded_and_can_be_forced():
    forced = compute_all([REF], ["Albert Einstein was born in Ulm, on 14 March 1879."], entity_mode="tags")
    assert forced["entity_mode"] == forced["entities"]["mode"] == "tags" and forced["entities"]["micro"]["f1"] == 0
    with pytest.raises(ValueError, match="auto, tags or tagger"):
        compute_all([REF], [REF], entity_mode="spacy")


def test_entity_formatting_reads_each_entity_once():
    # many entities: each reads exactly its own aligned words (found by bisection along the alignment)
    n = 2000
    ref = " ".join(f"[PERSON]Ann{i} Lee[/PERSON] met" for i in range(n))
    hyp = " ".join(f"Ann{i} Lee met" if i % 2 else f"Ann{i} X Lee met" for i in range(n))
    result = entity_scores([ref], [hyp])
    assert result["formatting"]["PERSON"]["count"] == n
    from rapidfuzz.distance import JaroWinkler

    expected = (sum(JaroWinkler.similarity(f"Ann{i} Lee", f"Ann{i} X Lee") for i in range(0, n, 2)) + n / 2) / n
    assert result["formatting"]["PERSON"]["jaro_winkler"] == pytest.approx(expected)


def test_marks_of_word_less_tokens_and_double_marks_count():
    result = punctuation_scores(["He left ], and stop!; now."], ["He left, and stop now."])
    assert result["per_mark"][","]["tp"] == 1  # "]," glued to "left"
    assert result["per_mark"]["!"]["fn"] == 1 and result["per_mark"][";"]["fn"] == 1  # both marks of "stop!;"
    assert result["punctuation_error_rate"] == pytest.approx(2 / 4)


@pytest.mark.parametrize("name,ref,hyp,mode,expected", [c for c in CASES if c[3] == "tags"], ids=lambda v: "")
def test_hostile_corpus(name, ref, hyp, mode, expected):
    assert summary(compute_all([ref], [hyp], entity_mode=mode)) == pytest.approx(expected), name


@pytest.mark.slow
@pytest.mark.parametrize("name,ref,hyp,mode,expected", [c for c in CASES if c[3] == "tagger"], ids=lambda v: "")
def test_hostile_corpus_with_the_tagger(name, ref, hyp, mode, expected):
    assert summary(compute_all([ref], [hyp], entity_mode=mode)) == pytest.approx(expected), name


def test_normalised_wer_with_unbalanced_brackets_follows_the_orthographic_errors():
    rng = random.Random(1)
    vocab = "the cat sat on a mat dog ran far away home river town".split()
    brackets = list("()[]<>{}")

    def text():
        out = []
        for _ in range(rng.randint(5, 40)):
            out.append(rng.choice(vocab))
            if rng.random() < 0.15:
                out.append(rng.choice(brackets))
        return " ".join(out)

    refs = [text() for _ in range(200)]
    hyps = [" ".join(w for w in r.split() if rng.random() > 0.1) for r in refs]
    normalised = word_error_rate(refs, hyps, "normalised")["wer"]
    orthographic = word_error_rate(refs, hyps, "orthographic")["wer"]
    assert normalised > 0 and abs(normalised - orthographic) <= 0.02


def test_loops_and_drops():
    from hf_whisper_context.metrics import loop_scores
    from hf_whisper_context.metrics.loops import repeated_runs

    assert repeated_runs("a b b b b c".split()) == [(1, 1, 4)]
    assert repeated_runs("x of the of the of the of the y".split()) == [(1, 2, 4)]
    assert repeated_runs("a a a b".split()) == []  # three times is not a loop
    ref = "one two three four five six"
    scores = loop_scores([ref], ["one two three four " + "la " * 12 + "five six"])
    assert scores["loops"] == 1 and scores["loop_words"] == 11 and scores["insertion_bursts"] == 1
    assert scores["deletion_runs"] == 0
    dropped = loop_scores([ref + " seven" * 30], [ref])
    assert (dropped["deletion_runs"], dropped["deletion_run_words"], dropped["loops"]) == (1, 30, 0)


def test_windows_add_up_to_the_corpus():
    ref = "[PERSON]Ann Lee[/PERSON] met Bob, in Paris. " * 20
    hyp = "Ann Lee met bob in [GPE]Paris[/GPE] today. " * 20
    result = compute_all([ref], [hyp], entity_mode="tags", window_words=7)
    windows = result["windows"][0]
    assert len(windows) == 18  # 120 reference words, 7 per window
    summed = {}
    for w in windows:
        for k, v in w.items():
            summed[k] = summed.get(k, 0) + v
    for key, value in result["counts"].items():
        if not key.startswith("norm_"):  # normalised WER is aligned per window: close, not equal
            assert summed[key] == pytest.approx(value), key


def _run(refs, hyps, window_words=10):
    """A minimal `evaluate_longform` run for `compare`."""
    from hf_whisper_context.evaluation import article_entry

    articles = [article_entry(f"a{i}", r, h, window_words) for i, (r, h) in enumerate(zip(refs, hyps, strict=True))]
    return {"articles": articles, "corpus": compute_all(refs, hyps, "tags")}


def test_compare_finds_a_real_difference_and_not_a_fake_one():
    from hf_whisper_context.metrics.compare import compare

    rng = random.Random(0)
    vocab = "the cat sat on a mat dog ran far away home river town".split()
    refs = [" ".join(rng.choice(vocab) for _ in range(200)) for _ in range(5)]

    def noisy(text, p):
        return " ".join(w if rng.random() > p else rng.choice(vocab) for w in text.split())

    good, bad = _run(refs, [noisy(r, 0.05) for r in refs]), _run(refs, [noisy(r, 0.3) for r in refs])
    result = compare([bad], [good], names=("bad", "good"))
    wer = result["metrics"]["wer"]
    assert result["unit"] == "window" and result["units"] == 100
    assert wer["difference"] < 0 and wer["ci_high"] < 0 and wer["better"] == "good"
    same = compare([good], [good])
    assert same["metrics"]["wer"]["difference"] == 0 and not same["metrics"]["wer"]["excludes_zero"]
    assert compare([good], [bad], seed=3) == compare([good], [bad], seed=3)  # seeded: deterministic
    seeds = compare([bad, bad], [good, _run(refs, [noisy(r, 0.05) for r in refs])])
    assert seeds["seeds"] == 2 and seeds["metrics"]["wer"]["better"] == "B"
    looped = _run(refs, [r + " far far far far far" for r in refs])  # one loop per article
    per_seed = compare([looped, looped], [looped, looped])["metrics"]["loops"]
    assert per_seed["a"] == compare([looped], [looped])["metrics"]["loops"]["a"] > 0  # counts per seed, not pooled


def test_compare_refuses_other_test_sets():
    from hf_whisper_context.metrics.compare import CompareError, compare

    a = _run(["one two three", "four five"], ["one two three", "four five"])
    b = _run(["one two three", "four five six"], ["one two three", "four five"])
    with pytest.raises(CompareError, match="another reference text"):
        compare([a], [b])
    c = _run(["one two three"], ["one two three"])
    with pytest.raises(CompareError, match=r"only in the first: \['a1'\]"):
        compare([a], [c])


def test_tables_show_a_dash_where_nothing_was_scored():
    from hf_whisper_context.evaluation import article_entry, run_entry
    from hf_whisper_context.report import shown_summary, tables

    text = "The cat sat on the mat. It was warm."  # no entity and no comma on either side
    run = {**run_entry([article_entry("a", text, text, 5, "tags")], "tags"), "strategy": "chunked"}
    assert run["summary"]["entity_f1"] == 1.0 and shown_summary(run)["entity_f1"] is None
    headline = tables({"runs": {"model (chunked)": run}})["headline"]
    assert "| Entity F1 (micro, strict) ↑ | – |" in headline and "| Comma F1 ↑ | – |" in headline
    assert "| Period F1 ↑ | 1.000 |" in headline


def test_counts_show_whole_and_means_over_seeds_keep_a_decimal():
    from hf_whisper_context.report import fmt

    assert (fmt("loops", 2), fmt("loops", 1 / 3), fmt("deletion_runs", 0.5774), fmt("wer", 0.1)) == (
        "2", "0.3", "0.6", "0.100")  # fmt: skip
