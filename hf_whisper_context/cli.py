"""`hf-whisper-context`: prepare the bundled models, transcribe audio, run the demo."""

from __future__ import annotations

import argparse
import logging
import sys

from transformers import HfArgumentParser

EXIT_ERROR, EXIT_SILENT = 1, 3


def _models(args) -> None:
    from . import bundled

    if args.action == "list":
        for name in bundled.known_models():
            print(name)
        return
    for name, path in bundled.prepare(args.names or None, args.cache_dir).items():
        print(f"{name}\t{path}")


def _transcribe(args) -> int:
    from .audio import is_silent, load_audio
    from .transcribe import Decoding, load_asr_pipeline, resolve_model, transcribe

    model = resolve_model(args.model, args.cache_dir)  # an unknown name fails before any audio work
    audio = load_audio(args.audio)
    if is_silent(audio):
        print(f"warning: {args.audio} is silent (peak below -60 dBFS): empty transcript", file=sys.stderr)
        print()
        return EXIT_SILENT
    decoding = Decoding(num_beams=args.num_beams, language=args.language)
    asr = load_asr_pipeline(model, args.device)
    print(f"# {args.model}, {decoding.describe()}", file=sys.stderr)
    print(transcribe(audio, asr, decoding))
    return 0


def _demo(args) -> None:
    from dataclasses import replace

    from .demo import DemoConfig, run_demo

    config = DemoConfig(output_dir=args.output_dir, overwrite=args.overwrite, cache_dir=args.cache_dir)
    config = config.quick() if args.quick else config
    if args.train_steps:
        config = replace(config, recipe=replace(config.recipe, steps=args.train_steps))
    run_demo(config)


def _push(args) -> None:
    from .hub import push_to_hub

    print(push_to_hub(args.folder, args.repo_id, private=args.private))


def _corpus(args) -> None:
    import json

    from .arguments import DataArguments
    from .data.corpus import CorpusConfig
    from .data.dataset import corpus_stats, load_swc

    data, config = _from_dataclasses(args, DataArguments, CorpusConfig)
    if args.action == "build":
        from .data.corpus import build_corpus

        report = build_corpus(data.folder(), config)
        print(f"built {len(report.built)} articles into {data.data} ({report.audio_s / 3600:.2f} h of new audio)")
        if report.skipped:
            print(f"passed over {len(report.skipped)}: " + "; ".join(report.skipped), file=sys.stderr)
    stats = corpus_stats(load_swc(data.folder(), test_articles=data.test_articles,
                                  validation_articles=data.validation_articles))  # fmt: skip
    print(json.dumps(stats, indent=2))


def _evaluate(args) -> None:
    from .arguments import DataArguments, EvaluationArguments, SpeechDatasetArguments
    from .data.prepare import evaluation_source
    from .report import markdown_table

    data, dataset, ev = _from_dataclasses(args, DataArguments, SpeechDatasetArguments, EvaluationArguments)
    results = ev.evaluate(evaluation_source(data, dataset, ev.split), dataset.dataset)
    print(markdown_table(results))
    print(f"written: {ev.output_dir}/results.json, results.md and plots")


def _compare(args) -> None:
    import json
    from pathlib import Path

    from .metrics.compare import CompareError, compare, compare_table

    def run(path: str, name: str | None) -> tuple[str, dict]:
        file = Path(path) / "results.json" if Path(path).is_dir() else Path(path)
        try:
            runs = json.loads(file.read_text())["runs"]
        except (OSError, ValueError, KeyError) as e:
            raise CompareError(f"{file} is not a results.json of `hf-whisper-context evaluate` ({e})") from None
        if name is None and len(runs) != 1:
            raise CompareError(f"{file} holds {len(runs)} runs: pick one with --run-a/--run-b ({', '.join(runs)})")
        name = name or next(iter(runs))
        if name not in runs:
            raise CompareError(f"{file} has no run {name!r}; runs: {', '.join(runs)}")
        return name, runs[name]

    (name_a, a), (name_b, b) = run(args.results_a, args.run_a), run(args.results_b, args.run_b)
    result = compare([a], [b], (name_a, name_b), args.unit, args.resamples, args.seed)
    print(compare_table(result))
    if args.output:
        from .utils import atomic_write

        atomic_write(args.output, json.dumps(result, indent=2) + "\n")


def _export(args) -> None:
    import json

    from .export import export_ctranslate2

    out = export_ctranslate2(args.folder, args.output_dir, args.quantization, args.overwrite, not args.no_check)
    if not args.no_check:
        report = json.loads((out / "export_check.json").read_text())
        print(f"checked on {len(report['clips'])} clips of real speech: greedy ids equal to the checkpoint's on "
              f"{len(report['clips']) - report['differing_clips']}, WER between the two "
              f"{report['mean_wer_export']:.3f}")  # fmt: skip
    print(f"written: {out} (faster_whisper.WhisperModel({str(out)!r}))")


def _app(args) -> None:
    from .app import launch

    launch(args.models, args.port, args.data, args.max_minutes, args.host)


def _from_dataclasses(args, *types) -> list:
    """The dataclasses a sub-command was built from (`HfArgumentParser`), filled from the parsed flags."""
    import dataclasses

    values = vars(args)
    return [t(**{f.name: values[f.name] for f in dataclasses.fields(t) if f.init and f.name in values}) for t in types]


def _experiment(args) -> None:
    from .experiment import ExperimentConfig, Recipe, quick, run_experiment

    config, recipe = _from_dataclasses(args, ExperimentConfig, Recipe)
    if args.quick:
        config, recipe = quick(config, recipe)
    run_experiment(config, recipe)


def _teacher(args) -> None:
    import json

    from .arguments import DataArguments, SpeechDatasetArguments, TeacherArguments
    from .data.prepare import training_source

    (data,) = _from_dataclasses(args, DataArguments)
    if args.action == "adapt":
        from .teacher.adapt import AdaptConfig, adapt_corpus

        (config,) = _from_dataclasses(args, AdaptConfig)
        report = adapt_corpus(data.folder(), args.output_dir, args.teacher, data.test_articles, config)
        print(json.dumps(report, indent=2))
        return
    from .teacher.cache import CacheConfig, cache_corpus

    teacher, config, dataset = _from_dataclasses(args, TeacherArguments, CacheConfig, SpeechDatasetArguments)
    source = training_source(data, dataset)
    for split, out in cache_corpus(source, args.output_dir, config, teacher.teacher, teacher.adapter,
                                   teacher.quantization, teacher.dtype, data.test_articles).items():  # fmt: skip
        print(f"{split}: cached in {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-whisper-context", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of its message")
    # sub-commands whose settings are dataclasses get their flags from them (`--name` and `--name-with-dashes`)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=HfArgumentParser)

    models = sub.add_parser("models", help="prepare or list the bundled real models (offline)")
    models.add_argument("action", choices=["prepare", "list"])
    models.add_argument("names", nargs="*", help="models to prepare (default: all)")
    models.add_argument("--cache-dir", help="cache root (default: $HF_WHISPER_CONTEXT_CACHE or ~/.cache/...)")
    models.set_defaults(func=_models)

    tr = sub.add_parser("transcribe", help="print the transcript of an audio file (wav/flac/ogg)")
    tr.add_argument("audio")
    tr.add_argument("--model", default="tiny.en", help="tiny.en, base, a local folder or a Hub id")
    tr.add_argument("--language", help="language code for multilingual models (default: detect)")
    tr.add_argument("--num-beams", type=int, default=1, help="1 = greedy (default)")
    tr.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    tr.add_argument("--cache-dir")
    tr.set_defaults(func=_transcribe)

    from .arguments import DataArguments, EvaluationArguments, SpeechDatasetArguments, TeacherArguments
    from .data.corpus import CorpusConfig
    from .teacher.adapt import AdaptConfig
    from .teacher.cache import CacheConfig

    corpus = sub.add_parser("corpus", help="build an offline spoken-Wikipedia corpus (SWC format), or count one",
                            dataclass_types=[DataArguments, CorpusConfig])  # fmt: skip
    corpus.add_argument("action", choices=["build", "stats"])
    corpus.set_defaults(func=_corpus)

    ev = sub.add_parser("evaluate", help="long-form evaluation of whole articles; one column per model/strategy",
                        dataclass_types=[DataArguments, SpeechDatasetArguments, EvaluationArguments])  # fmt: skip
    ev.set_defaults(func=_evaluate)

    teacher = sub.add_parser("teacher", help="adapt the teacher to tagged text (LoRA SFT), or cache its outputs")
    actions = teacher.add_subparsers(dest="action", required=True, parser_class=HfArgumentParser)
    adapt = actions.add_parser("adapt", help="LoRA SFT of the teacher on the tagged article text",
                               dataclass_types=[DataArguments, AdaptConfig])  # fmt: skip
    adapt.add_argument("--teacher", default=TeacherArguments.teacher, help="Teacher: bundled name, folder or Hub id.")
    cache = actions.add_parser("cache", help="cache the teacher's top-k distributions and context embeddings",
                               dataclass_types=[DataArguments, TeacherArguments, CacheConfig,
                                                SpeechDatasetArguments])  # fmt: skip
    for command in (adapt, cache):
        command.add_argument("--output-dir", "--output_dir", dest="output_dir", required=True)
        command.set_defaults(func=_teacher)

    cmp = sub.add_parser("compare", help="paired bootstrap: is run B really better than run A? (95% intervals)")
    cmp.add_argument("results_a", help="results.json (or its folder) of `evaluate`")
    cmp.add_argument("results_b", help="results.json (or its folder) of `evaluate` on the same articles")
    cmp.add_argument("--run-a", help="run name in A (needed when A holds several), e.g. 'tiny.en (chunked)'")
    cmp.add_argument("--run-b", help="run name in B")
    cmp.add_argument(
        "--unit",
        default="auto",
        choices=["auto", "article", "window"],
        help="what is resampled (auto: articles when there are >= 20, else 30 s windows)",
    )
    cmp.add_argument("--resamples", type=int, default=10_000)
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--output", help="also write the comparison as JSON")
    cmp.set_defaults(func=_compare)

    from .demo import DEMO_STEPS

    demo = sub.add_parser("demo", help="the main job: corpus, teacher, plain and distilled students, evaluation")
    demo.add_argument("--output-dir", default="outputs/demo", help="where everything is written")
    demo.add_argument("--overwrite", action="store_true", help="replace a previous run (its corpus is reused)")
    demo.add_argument("--quick", action="store_true", help="the same path at toy size (a few minutes)")
    demo.add_argument("--train-steps", type=int, help=f"training steps per student (default {DEMO_STEPS}; quick: 4)")
    demo.add_argument("--cache-dir")
    demo.set_defaults(func=_demo)

    from .experiment import ExperimentConfig, Recipe

    exp = sub.add_parser(
        "experiment",
        dataclass_types=[ExperimentConfig, Recipe],
        help="arms x seeds x context sizes: train, evaluate long-form, table with paired intervals",
    )
    exp.add_argument("--quick", action="store_true", help="the same grid at toy size (two seeds, a few steps)")
    exp.set_defaults(func=_experiment)

    from .export import QUANTIZATIONS

    export = sub.add_parser("export", help="write a CTranslate2 folder for faster-whisper, checked against the model")
    export.add_argument("folder", help="a student checkpoint: merged, or a LoRA adapter folder (merged first)")
    export.add_argument("--format", choices=["ctranslate2"], default="ctranslate2")
    export.add_argument("--output-dir", required=True)
    export.add_argument("--quantization", choices=QUANTIZATIONS, default="float16",
                        help="weights as stored (float16 runs on GPUs and, as float32, on CPUs)")  # fmt: skip
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty --output-dir")
    export.add_argument("--no-check", action="store_true", help="skip the comparison with the checkpoint")
    export.set_defaults(func=_export)

    from .app import MAX_MINUTES

    app = sub.add_parser("app", help="a local page comparing the models' transcripts (Gradio; the `app` extra)")
    app.add_argument("--models", nargs="+", default=["tiny.en"], help="bundled names, folders or Hub ids")
    app.add_argument("--data", help="a built corpus: its test articles can be picked on the page")
    app.add_argument("--port", type=int, default=7860)
    app.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    app.add_argument("--max-minutes", type=float, default=MAX_MINUTES, help="longest audio the page transcribes")
    app.set_defaults(func=_app)

    push = sub.add_parser("push", help="upload a saved checkpoint folder (with its model card) to the Hub")
    push.add_argument("folder")
    push.add_argument("--repo-id", required=True, help="user-or-org/model-name")
    push.add_argument("--private", action="store_true")
    push.set_defaults(func=_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import HfWhisperContextError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args) or 0
    except (HfWhisperContextError, OSError) as e:  # what the input or the machine got wrong, said plainly
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
