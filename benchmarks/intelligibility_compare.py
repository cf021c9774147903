"""Is voice B clearer than voice A? Two `intelligibility.py --json` runs, sentence by sentence.

A 50-sentence WER moves by about ±0.02 with nothing changed but the seeds, so two means alone
say little. Both runs synthesize the same sentences for the same speakers, so each (sentence,
speaker) pair is scored in both: the difference of WERs (word edits over reference words), a 95 %
bootstrap interval over the pairs, and how many pairs got better or worse.

    python benchmarks/intelligibility.py --no-teachers --json a.json
    python benchmarks/intelligibility.py --model RUN/model.safetensors --exclude CORPUS/metadata.csv \\
        --no-teachers --json b.json
    python benchmarks/intelligibility_compare.py a.json b.json
    python benchmarks/intelligibility_compare.py a.json b.json --and a_seed1.json b_seed1.json  # pooled

`--and A B` (repeatable) adds the pairs of two more runs, e.g. on other sentences (`--seed`), to
one pooled difference and interval: how a result found on one sentence set is confirmed on fresh
ones without losing what the first set measured.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from tts.intelligibility import normalize_for_scoring, word_error_rate


def sentence_errors(path: Path) -> tuple[list[str], dict[str, list[int]], list[int]]:
    """Sentences, word edits per speaker and sentence, and each sentence's reference word count."""
    run = json.loads(path.read_text(encoding="utf-8"))
    words = [len(normalize_for_scoring(sentence).split()) for sentence in run["sentences"]]
    errors = {}
    for row in run["rows"]:
        if "hypotheses" not in row:
            raise SystemExit(f"{path}: no transcripts in its rows; rerun intelligibility.py with --json")
        errors[str(row["speaker"])] = [word_error_rate([sentence], [hypothesis]) * count for sentence, hypothesis, count
                                       in zip(run["sentences"], row["hypotheses"], words)]
    return run["sentences"], errors, words


def paired_errors(path_a: Path, path_b: Path) -> list[tuple[float, float, int]]:
    """(word edits of A, word edits of B, reference words) for every (sentence, speaker) both runs scored."""
    sentences_a, errors_a, words = sentence_errors(path_a)
    sentences_b, errors_b, _ = sentence_errors(path_b)
    if sentences_a != sentences_b or errors_a.keys() != errors_b.keys():
        raise SystemExit(f"{path_a} and {path_b} spoke different sentences or speakers; use the same --sentences, "
                         "--seed and training corpus (--exclude)")
    return [(errors_a[speaker][index], errors_b[speaker][index], words[index])
            for speaker in errors_a for index in range(len(words))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="the reference run's --json")
    parser.add_argument("b", type=Path, help="the run to compare with it")
    parser.add_argument("--and", dest="more", type=Path, nargs=2, action="append", default=[], metavar=("A", "B"),
                        help="another pair of runs (other sentences) to pool with the first (repeatable)")
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args(argv)

    pairs = [pair for path_a, path_b in [(args.a, args.b), *args.more] for pair in paired_errors(path_a, path_b)]

    def difference(sample: list[tuple[float, float, int]]) -> float:
        total = sum(count for _, _, count in sample)
        return (sum(b for _, b, _ in sample) - sum(a for a, _, _ in sample)) / total

    total = sum(count for _, _, count in pairs)
    rng = random.Random(0)
    resampled = sorted(difference([rng.choice(pairs) for _ in pairs]) for _ in range(args.resamples))
    low, high = resampled[int(0.025 * args.resamples)], resampled[int(0.975 * args.resamples) - 1]
    print(f"WER A {sum(a for a, _, _ in pairs) / total:.3f}   B {sum(b for _, b, _ in pairs) / total:.3f}   "
          f"B - A {difference(pairs):+.3f} (95 % interval {low:+.3f} to {high:+.3f})")
    print(f"B better on {sum(b < a for a, b, _ in pairs)}, worse on {sum(b > a for a, b, _ in pairs)} "
          f"of {len(pairs)} sentence x speaker pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
