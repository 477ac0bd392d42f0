# SPDX-License-Identifier: MIT
"""A reproducible chat-like corpus for search benchmarks: words drawn from a Zipf-distributed vocabulary
(a few very common words, a long tail), 3-30 words per message, a sprinkle of accented words."""
import random

BASE = ("the a to and of in is it you that for on we this be with are have not can at just do so but "
        "deploy build release server client database index query cache review merge branch test failing "
        "lunch meeting tomorrow today friday standup ticket customer invoice report design mockup "
        "café naïve résumé Zürich garçon über jalapeño façade coöperate").split()


def vocabulary(rng, n=20000):
    words = list(dict.fromkeys(BASE))
    letters = "abcdefghijklmnopqrstuvwxyz"
    while len(words) < n:
        w = "".join(rng.choice(letters) for _ in range(rng.randint(3, 10)))
        if w not in words:
            words.append(w)
    return words


def messages(n, seed=17):
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    cum, t = [], 0.0
    for i in range(len(vocab)):
        t += 1.0 / (i + 1)
        cum.append(t)
    out = []
    for i in range(n):
        k = rng.randint(3, 30)
        out.append(" ".join(rng.choices(vocab, cum_weights=cum, k=k)))
    return out, vocab
