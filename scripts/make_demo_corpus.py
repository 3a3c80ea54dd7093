#!/usr/bin/env python3
"""Generate the German -> English demo corpus in ``data/demo/`` deterministically.

Numbers are spelled out by num2words and dates written by babel in each language, so the text follows those
libraries' rules rather than hand-written tables. The alignments are not monotonic: German spells the units
before the tens ("vierundzwanzig" = "four-and-twenty", English "twenty-four"), writes dates day-first
("24. März 2021" vs "March 24, 2021") and puts participles last ("hat ... gekauft" vs "bought ...").

The generated files are committed; this script is only needed to regenerate them:

    pip install num2words babel && python scripts/make_demo_corpus.py
"""

from __future__ import annotations

import argparse
import datetime
import random
from pathlib import Path

NAMES = ["Anna", "Peter", "Maria", "Thomas", "Lena", "Paul", "Sofia", "Jonas"]
# (German plural, English plural)
NOUNS = [("Äpfel", "apples"), ("Bücher", "books"), ("Katzen", "cats"), ("Hunde", "dogs"), ("Häuser", "houses"),
         ("Autos", "cars"), ("Blumen", "flowers"), ("Briefe", "letters"), ("Stühle", "chairs"), ("Vögel", "birds")]
# (German participle, English past tense)
VERBS = [("gekauft", "bought"), ("gesehen", "saw"), ("verkauft", "sold"), ("gefunden", "found"),
         ("gemalt", "painted")]


def sentence(rng: random.Random, num2words, format_date) -> tuple[str, str]:
    name = rng.choice(NAMES)
    noun_de, noun_en = rng.choice(NOUNS)
    verb_de, verb_en = rng.choice(VERBS)
    n = rng.randint(2, 99)
    n_de, n_en = num2words(n, lang="de"), num2words(n, lang="en")
    day = datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(365 * 80))
    date_de, date_en = format_date(day, format="long", locale="de"), format_date(day, format="long", locale="en")
    kind = rng.randrange(4)
    if kind == 0:
        return f"{name} hat {n_de} {noun_de} {verb_de}.", f"{name} {verb_en} {n_en} {noun_en}."
    if kind == 1:
        return (f"Am {date_de} hat {name} {n_de} {noun_de} {verb_de}.",
                f"On {date_en}, {name} {verb_en} {n_en} {noun_en}.")
    if kind == 2:
        return f"{name} ist am {date_de} geboren.", f"{name} was born on {date_en}."
    return (f"Ich glaube, dass {name} {n_de} {noun_de} {verb_de} hat.",
            f"I think that {name} {verb_en} {n_en} {noun_en}.")

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "demo")
    parser.add_argument("--seed", type=int, default=2015)
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--dev", type=int, default=300)
    parser.add_argument("--test", type=int, default=300)
    args = parser.parse_args()
    from babel.dates import format_date
    from num2words import num2words

    rng = random.Random(args.seed)
    pairs: dict[str, str] = {}
    total = args.train + args.dev + args.test
    while len(pairs) < total:  # unique source sentences: no dev/test sentence is in train
        de, en = sentence(rng, num2words, format_date)
        pairs.setdefault(de, en)
    items = list(pairs.items())
    rng.shuffle(items)
    splits = {"train": items[: args.train], "dev": items[args.train : args.train + args.dev],
              "test": items[args.train + args.dev :]}
    args.out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        for lang, column in (("de", 0), ("en", 1)):
            (args.out / f"{split}.{lang}").write_text("".join(r[column] + "\n" for r in rows), encoding="utf-8")
        print(f"{split}: {len(rows)} pairs")


if __name__ == "__main__":
    main()
