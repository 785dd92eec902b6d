"""Hostile reference/hypothesis pairs with the expected value of every headline metric, written down by hand.

Each case: (name, reference, hypothesis, entity mode, expected `summary`). `PERFECT` is what a hypothesis identical
to its reference scores. Cases in mode "tagger" run spaCy (marked slow in the test).
"""

PERFECT = {"wer": 0.0, "wer_orthographic": 0.0, "entity_f1": 1.0, "comma_f1": 1.0, "period_f1": 1.0,
           "punctuation_error_rate": 0.0, "capitalization_f1": 1.0, "loops": 0, "insertion_bursts": 0,
           "deletion_runs": 0}  # fmt: skip


def expect(**changes) -> dict:
    return {**PERFECT, **changes}


def _words(n: int, seed: int = 0) -> str:
    import random

    rng = random.Random(seed)
    vocab = "the a of river town people built old new bridge north south mill school church road".split()
    sentences, words = [], []
    for i in range(n):
        words.append(rng.choice(vocab))
        if len(words) == 12 or i == n - 1:
            sentences.append(" ".join(words).capitalize() + ".")
            words = []
    return " ".join(sentences)


HUNDRED_K = _words(100_000)
ONE_MB_WORD = "a" * 1_000_000

CASES = [
    ("both empty", "", "", "tags", PERFECT),
    (
        "empty hypothesis",
        "The cat sat.",
        "",
        "tags",
        expect(wer=1.0, wer_orthographic=1.0, period_f1=0.0, punctuation_error_rate=1.0, capitalization_f1=0.0),
    ),
    (
        "empty reference",
        "",
        "Surprise words.",
        "tags",
        expect(wer=1.0, wer_orthographic=1.0, period_f1=0.0, punctuation_error_rate=1.0, capitalization_f1=0.0),
    ),
    ("only punctuation", "... !!! ,,,", "...", "tags", PERFECT),
    ("whitespace only", " \t\n ", "", "tags", PERFECT),
    # the inner opener closes the outer entity; the stray [/PERSON] is dropped: same spans as the hypothesis
    (
        "nested tags",
        "[PERSON]Bob [GPE]Paris[/GPE][/PERSON] went.",
        "[PERSON]Bob[/PERSON] [GPE]Paris[/GPE] went.",
        "tags",
        PERFECT,
    ),
    # an unclosed opener runs to the end: one 3-word PERSON against a 2-word one
    ("unclosed tag", "[PERSON]Bob Dylan sang.", "[PERSON]Bob Dylan[/PERSON] sang.", "tags", expect(entity_f1=0.0)),
    (
        "paper tag syntax",
        "<PERSON>Bob Dylan</PERSON> sang in <GPE>Paris</GPE>.",
        "[PERSON]Bob Dylan[/PERSON] sang in [GPE]Paris[/GPE].",
        "tags",
        PERFECT,
    ),
    ("not a tag", "See section [A] now.", "See section now.", "tags", expect(wer=0.25, wer_orthographic=0.25)),
    ("1 MB single word", ONE_MB_WORD, ONE_MB_WORD, "tagger", PERFECT),
    ("100k words", HUNDRED_K, HUNDRED_K, "tags", PERFECT),
    (
        "control and zero-width characters",
        "Hello\u200b wor\u200bld\x1c.\u2028Next\x85line\x00 here.",
        "Hello world. Next line here.",
        "tags",
        PERFECT,
    ),
    ("only invisible characters", "\u200b\u200c\u200d\ufeff\x1c\x1f", "", "tags", PERFECT),
    (
        "only invisible characters, words said",
        "\u200b\u200c\u200d\ufeff\x1c\x1f",
        "hello there",
        "tags",
        expect(wer=1.0, wer_orthographic=1.0, capitalization_f1=0.0),
    ),
    ("right-to-left marks", "\u200fשלום\u200f עולם.", "שלום עולם.", "tags", PERFECT),
    ("CJK without spaces", "东京是日本的首都。", "东京是日本的首都。", "tags", PERFECT),
    # one "word" each (no spaces), a different one: a substitution; "。" is not a scored mark
    (
        "CJK substituted",
        "东京是日本的首都。",
        "京都是日本的首都。",
        "tags",
        expect(wer=1.0, wer_orthographic=1.0, capitalization_f1=0.0),
    ),
    # fullwidth marks are not scored marks: the hypothesis's ASCII comma and period are false alarms
    (
        "fullwidth punctuation",
        "Hello， world．",
        "Hello, world.",
        "tags",
        expect(wer_orthographic=1.0, comma_f1=0.0, period_f1=0.0, punctuation_error_rate=1.0),
    ),
    ("lone surrogate", "abc \ud800 def.", "abc def.", "tags", PERFECT),
    (
        "marks after word-less tokens",
        "Here (it ], is ). Yes!; no",
        "Here (it is. Yes no",
        "tags",
        # ref marks: "it" , / "is" . / "Yes" ! ; — the hypothesis keeps only the period
        expect(wer_orthographic=0.4, comma_f1=0.0, punctuation_error_rate=0.75),
    ),
    (
        "identical, tagger, odd spacing",
        "Albert Einstein  was born\n\nin Ulm\x1c in 1879.",
        "Albert Einstein  was born\n\nin Ulm\x1c in 1879.",
        "tagger",
        PERFECT,
    ),
    (
        "identical, tagger, timestamps",
        "<|0.00|>Albert Einstein was born in Ulm.<|4.20|>",
        "<|0.00|>Albert Einstein was born in Ulm.<|4.20|>",
        "tagger",
        PERFECT,
    ),
    (
        "a loop",
        "He worked as a term of a B side.",
        "He worked as a term of a B B B B B side.",
        "tags",
        expect(wer=4 / 9, wer_orthographic=4 / 9, loops=1),
    ),
    ("a refrain is no loop", "Row row row row your boat.", "Row row row row your boat.", "tags", PERFECT),
    # the hypothesis's period lands on an aligned "word" (a false alarm, and an orthographic substitution), the
    # reference's is deleted (a miss)
    (
        "a dropped window",
        "word word word " + " ".join(f"{a}{b}" for a in "bcdfg" for b in "aeiou") + ".",
        "word word word.",
        "tags",
        expect(wer=25 / 28, wer_orthographic=26 / 28, deletion_runs=1, period_f1=0.0, punctuation_error_rate=2.0),
    ),
]
