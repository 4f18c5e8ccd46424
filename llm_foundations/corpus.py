"""Small texts for chapter 2, made here so that nothing is ever downloaded.

- :data:`SAMPLE_TEXT` and :data:`HELD_OUT_TEXT`: a few paragraphs of plain English prose, written
  for this course, to train byte-pair encoding on and to test it on text it has not seen.
- :func:`generate_corpus`: a synthetic corpus of short sentences built from templates over word
  groups (animals, foods, colours, countries, capitals, royalty, days). Words of one group appear
  in the same kinds of sentences, so a skip-gram model trained on it for a few seconds puts them
  close together: a controlled miniature of what word2vec finds in real text.

The corpus is deterministic: the same arguments give the same sentences on every machine, because
it draws from its own :class:`random.Random` and never touches the global random state.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import torch

from llm_foundations.embeddings import noise_distribution, skipgram_pairs

#: The word groups of the synthetic corpus. Capitals are listed in the order of their countries.
WORD_GROUPS: dict[str, list[str]] = {
    "animals": ["cat", "dog", "horse", "cow", "sheep", "goat", "pig", "rabbit"],
    "foods": ["bread", "cheese", "rice", "soup", "apple", "cake", "pasta", "salad"],
    "colours": ["red", "blue", "green", "yellow", "purple", "brown", "pink", "grey"],
    "countries": ["france", "italy", "japan", "egypt", "canada", "peru", "kenya", "norway"],
    "capitals": ["paris", "rome", "tokyo", "cairo", "ottawa", "lima", "nairobi", "oslo"],
    "royalty": ["king", "queen", "prince", "princess", "duke", "duchess", "emperor", "empress"],
    "days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
}

#: The capital of each country, from :data:`WORD_GROUPS`.
CAPITAL_OF: dict[str, str] = dict(zip(WORD_GROUPS["countries"], WORD_GROUPS["capitals"]))

_MALE = {"king", "prince", "duke", "emperor"}

# Slots: {animals}, {foods}, ... draw a word of that group; {capital_of_country} fills a country and
# its own capital. Each group has contexts of its own; a few templates mix two groups, as real text does.
_TEMPLATES: list[str] = [
    # animals
    "the {animals} sleeps in the barn",
    "a hungry {animals} eats grass in the field",
    "the farmer feeds the {animals} every morning",
    "the vet looked at the sick {animals}",
    "my {animals} runs around the farm",
    "the young {animals} drinks milk",
    # foods
    "she ate {foods} for lunch",
    "we bought fresh {foods} at the market",
    "he cooked {foods} for dinner",
    "this {foods} tastes delicious",
    "a plate of {foods} with a glass of water",
    "the baker sold warm {foods}",
    # colours
    "she painted the door {colours}",
    "he wore a {colours} coat",
    "my favourite colour is {colours}",
    "a bright {colours} flower grew by the wall",
    "the walls are {colours} and the roof is {colours}",
    "the artist mixed {colours} paint",
    # countries and capitals
    "{capital} is the capital of {country}",
    "the capital city of {country} is {capital}",
    "we travelled across {countries} by train",
    "the people of {countries} love football",
    "the map shows the borders of {countries}",
    "she flew to {capitals} for a meeting",
    "the streets of {capitals} are busy at night",
    "many tourists visit {capitals} in summer",
    # royalty (he / she agree with the title)
    "the {royalty} ruled the kingdom wisely",
    "the {royalty} wore a golden crown",
    "long live the {royalty}",
    "the {royalty} lives in the palace",
    "the servants bowed to the {royalty}",
    "the {royalty} sat on the throne and {pronoun} smiled",
    # days
    "the shop is closed on {days}",
    "we meet every {days} evening",
    "see you next {days}",
    "the market opens on {days} morning",
    # two groups at once
    "on {days} the {royalty} ate {foods}",
    "the {animals} ate the {foods}",
    "the {colours} {animals} slept",
]


def generate_corpus(num_sentences: int = 3000, seed: int = 0) -> list[str]:
    """Generate the synthetic corpus: ``num_sentences`` lower-case sentences, words separated by spaces.

    Each sentence fills a random template (39 of them, about six per word group) with random words
    of the groups it names, from :data:`WORD_GROUPS`. The template "{capital} is the capital of
    {country}" always pairs a country with its own capital.

    Args:
        num_sentences: how many sentences to make.
        seed: seed of the corpus's own random generator; the global random state is untouched.

    Returns:
        The sentences, e.g. ``"the dog sleeps in the barn"``.
    """
    if num_sentences < 0:
        raise ValueError(f"num_sentences must be >= 0, got {num_sentences}")
    rng = random.Random(seed)
    sentences = []
    for _ in range(num_sentences):
        template = rng.choice(_TEMPLATES)
        country = rng.choice(WORD_GROUPS["countries"])
        royal = rng.choice(WORD_GROUPS["royalty"])
        slots = {group: rng.choice(words) for group, words in WORD_GROUPS.items()}
        slots.update(royalty=royal, pronoun="he" if royal in _MALE else "she",
                     country=country, capital=CAPITAL_OF[country])
        if template.count("{colours}") == 2:  # two different colours
            first, second = rng.sample(WORD_GROUPS["colours"], 2)
            template = template.replace("{colours}", first, 1)
            slots["colours"] = second
        sentences.append(template.format(**slots))
    return sentences


def word_vocabulary(sentences: Sequence[str]) -> tuple[list[str], torch.Tensor]:
    """The words of ``sentences``, most frequent first (ties alphabetical), and their counts.

    Returns:
        ``(words, counts)``: ``words[i]`` is the word of id ``i``; ``counts`` is a LongTensor ``(V,)``.
    """
    counter = Counter(word for sentence in sentences for word in sentence.split())
    ordered = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    words = [word for word, _ in ordered]
    return words, torch.tensor([count for _, count in ordered], dtype=torch.long)


def sentences_to_ids(sentences: Sequence[str], words: Sequence[str]) -> list[torch.Tensor]:
    """Each sentence as a LongTensor of word ids (``words[i]`` has id ``i``)."""
    index = {word: i for i, word in enumerate(words)}
    return [torch.tensor([index[w] for w in sentence.split()], dtype=torch.long) for sentence in sentences]


SAMPLE_TEXT = """\
The lighthouse stood at the end of a long stone pier, and every evening the keeper climbed the \
winding stairs to light the lamp. He counted the steps as he climbed: there were one hundred and \
twelve of them, and he had counted them every evening for thirty years. The counting kept him \
company. At the top he trimmed the wick, polished the great glass lens, and watched the light \
turn slowly over the water.

The ships that passed in the night never saw the keeper. They saw only the light, turning and \
turning, and they knew where the rocks were. The keeper liked it that way. He thought that the \
best work was the work that nobody noticed, the work that kept things from going wrong rather \
than the work that fixed them afterwards.

In the morning he walked back along the pier to the village, where the baker was opening the \
shop and the fishermen were mending their nets. They talked about the weather, about the wind \
turning to the north, about the price of bread and the price of fish. Nothing ever changed much \
in the village, and the keeper was glad of that too.

One winter a storm came in from the sea, the strongest storm anyone could remember. The waves \
broke over the pier and the wind howled around the tower. The keeper climbed the stairs, counting \
the steps, and kept the lamp burning through the whole night. In the morning the storm had passed, \
the sea was calm, and every ship that had been out in the storm was safe in the harbour.

The fishermen came to the tower that afternoon to thank him. They brought bread from the baker, a basket of fish and a bottle of wine, and they climbed the stairs with him, counting the steps out loud. At the top they looked out over the water and saw, for the first time, what the keeper saw every evening: the long line of the coast, the rocks under the waves, and the small lights of the ships moving slowly towards the harbour.

When the keeper grew old, a girl from the village began to help him. She was quick and curious, and she asked questions about everything: why the lens was shaped like a beehive, why the lamp burned oil and not wood, why the light turned instead of standing still. He answered every question as well as he could, and when he did not know the answer he said so, and together they looked for it in the old books that filled the room at the bottom of the tower.

The light turns, he told her, so that every ship can tell our tower from the others along the coast. Each lighthouse has its own rhythm: ours flashes twice, waits, and flashes twice again. A captain who counts the flashes knows where he is, even on the darkest night, even when he cannot see the land. She liked that. She thought that a light with its own rhythm was a little like a voice, and that the ships were listening to it.

Years later, when the keeper had gone, the girl kept the light herself. She climbed the stairs every evening, counting the steps, one hundred and twelve of them, and she trimmed the wick and polished the lens and watched the light turn over the water, twice, a pause, and twice again.
"""

HELD_OUT_TEXT = """\
A young woman from the city came to the village in the spring to paint the harbour. She set up \
her easel at the end of the pier every morning and painted the boats, the nets and the water, \
changing colour as the clouds moved across the sky.
"""


def skipgram_training_data(num_sentences: int = 3000, seed: int = 0, window: int = 2):
    """Everything :func:`llm_foundations.embeddings.train_skipgram` needs, from :func:`generate_corpus`.

    Returns:
        ``(words, pairs, noise)``: the vocabulary (most frequent first), the ``(P, 2)``
        (center, context) id pairs within ``window`` words, and word2vec's noise distribution
        ``(V,)`` (counts to the power 3/4).
    """
    sentences = generate_corpus(num_sentences, seed)
    words, counts = word_vocabulary(sentences)
    pairs = skipgram_pairs(sentences_to_ids(sentences, words), window)
    return words, pairs, noise_distribution(counts)
