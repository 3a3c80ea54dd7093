#!/usr/bin/env python
"""Train skip-gram word vectors (gensim Word2Vec, negative sampling) on local text for ``model.pretrained_embeddings``.

Text comes from the training splits of classify configs (read, cleaned and tokenized exactly as those runs do)
and from plain text files (one document per line, plain or .gz, ``shared:`` paths allowed), cleaned as the first
config says. The output is the word2vec text format. With ``--seed`` (and one thread, the default then) the
vectors are the same on every run; ``--threads N`` without a seed is faster and not reproducible.

    python scripts/train_word_vectors.py --config configs/cls_imdb_bilstm_cpu.yaml --config configs/cls_trec.yaml \\
        --text shared:multi30k/train.en.gz --dim 128 -o vectors/imdb_trec_m30k.128d.txt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from seq2seq_attn.classification.config import ClassificationConfig, DataConfig
from seq2seq_attn.classification.data import read_split
from seq2seq_attn.classification.text import WordVocab, clean
from seq2seq_attn.classification.word_vectors import train_word2vec, write_word_vectors
from seq2seq_attn.config import load_config
from seq2seq_attn.paths import resolve_path
from seq2seq_attn.translation.corpus import read_lines


def documents(configs: list[Path], texts: list[str]) -> list[list[str]]:
    tokenizer = WordVocab([])
    docs: list[list[str]] = []
    first: DataConfig | None = None
    for path in configs:
        data = load_config(ClassificationConfig, path).data
        first = first or data
        split = read_split(data.train, data)
        docs += [tokenizer.tokenize(clean(ex.text, data)) for ex in split.examples]
        print(f"{path}: {len(split.examples):,} training documents ({data.train})")
    cleaning = first or DataConfig(train="-")
    for spec in texts:
        path = resolve_path(spec, "text file")
        lines = [line for line in read_lines(path) if line]  # gz or plain; bad UTF-8 names the line
        docs += [tokenizer.tokenize(clean(line, cleaning)) for line in lines]
        print(f"{path}: {len(lines):,} lines")
    return docs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, action="append", default=[], help="a classify config: its train split")
    p.add_argument("--text", action="append", default=[], help="a text file, one document per line")
    p.add_argument("-o", "--output", type=Path, required=True, help="the vectors file to write (.txt or .txt.gz)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--max-words", type=int, default=50000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.025)
    p.add_argument("--subsample", type=float, default=1e-4, help="frequent-word subsampling threshold (0 = off)")
    p.add_argument("--threads", type=int, default=None,
                   help="gensim worker threads (default 1 with --seed, else 4); more than 1 is not reproducible")
    p.add_argument("--seed", type=int, default=None, help="random seed: the same vectors on every run")
    args = p.parse_args(argv)
    if not args.config and not args.text:
        p.error("give at least one --config or --text")
    if args.seed is not None and args.threads not in (None, 1):
        p.error(f"--seed with --threads {args.threads}: gensim is reproducible only with one thread")
    workers = args.threads or (1 if args.seed is not None else 4)
    start = time.monotonic()
    docs = documents(args.config, args.text)
    print(f"{sum(map(len, docs)):,} tokens in {len(docs):,} documents")
    words, vectors = train_word2vec(docs, dim=args.dim, window=args.window, negatives=args.negatives,
                                    min_count=args.min_count, max_words=args.max_words, epochs=args.epochs,
                                    lr=args.lr, subsample=args.subsample, seed=args.seed,
                                    workers=workers)
    write_word_vectors(args.output, words, vectors)
    print(f"wrote {len(words):,} vectors of {args.dim} numbers to {args.output} in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
