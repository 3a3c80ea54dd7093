"""Translation: parallel data, sentencepiece subwords, attention encoder-decoders, search and scoring."""
