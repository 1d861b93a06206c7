#!/usr/bin/env python3
"""Writes tests/fixtures/hf/qwen2/tokenizer.json: a word-level tokenizer (Hugging Face's
`tokenizers`) over the tiny checkpoint's 64 ids — id i is the i-th word of WORDS, split on
whitespace, no special tokens — so the command line's `--text` and `--target-token` can be
tested on the fixture: the words of a prompt map to the ids the reference was computed on.

Usage: python3 tools/hf-reference/tokenizer.py (tokenizers)
"""
import pathlib

from tokenizers import Tokenizer, models, pre_tokenizers

WORDS = ("the of and to in is was for on that with as by at from his her an are were which "
         "this be or had not but first new one two all after also who have has its their city "
         "river king war game team film album song school year time world state north south "
         "east west paris rome london berlin madrid vienna prague").split()
OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "hf" / "qwen2" / "tokenizer.json"


def main():
    assert len(WORDS) == 64 and len(set(WORDS)) == 64, len(WORDS)
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="the"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(OUT))
    print(OUT)


if __name__ == "__main__":
    main()
