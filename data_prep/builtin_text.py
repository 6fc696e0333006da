"""Sentences of the built-in corpus: a small English grammar, expanded deterministically.

`sentences(n, seed)` gives `n` distinct sentences of 4 to 15 words (statements, questions,
requests and exclamations, some with numbers written as words). The corpus takes its test and
dev sentences from the head of this list and picks its train sentences from the rest
(`builtin_select`), so no dev or test sentence occurs in train.

The word lists carry every phone of espeak-ng's en-us inventory (`ttsframe.text.inventory`):
besides everyday words, words with the rarer phones (measure, museum, button, tour, fire,
boy, ...) and a few loanwords and names (Bach, croissant, jalapeno, Llano, Argyll, Tolkien).
"""

from __future__ import annotations

import random
import re

MIN_WORDS, MAX_WORDS = 4, 15

NAMES = ["Anna", "Peter", "Maria", "David", "Sarah", "James", "Laura", "Thomas", "Emily", "Daniel",
         "Grace", "Oliver", "Helen", "Victor", "Julia", "Martin", "Clara", "Simon", "Nora", "Arthur",
         "Joyce", "Theo", "Ruth", "Sean", "Hugo", "Mister Arruda", "Miss Tolkien", "Doctor Bach"]
PEOPLE = ["the old farmer", "my sister", "the young doctor", "our neighbour", "a tall man",
          "the teacher", "his brother", "the pilot", "a quiet student", "the baker", "her uncle",
          "the driver", "my best friend", "the nurse", "a little girl", "the captain", "the usual visitor",
          "the cheerful tourist", "a curious boy", "the treasurer", "the choir leader", "the old fisherman",
          "the television reporter", "the museum guard"]
# (singular, plural)
NOUNS = [("apple", "apples"), ("letter", "letters"), ("chair", "chairs"), ("window", "windows"),
         ("book", "books"), ("bottle", "bottles"), ("ticket", "tickets"), ("basket", "baskets"),
         ("candle", "candles"), ("blanket", "blankets"), ("map", "maps"), ("key", "keys"),
         ("picture", "pictures"), ("lamp", "lamps"), ("coat", "coats"), ("boat", "boats"),
         ("garden", "gardens"), ("horse", "horses"), ("song", "songs"), ("cup", "cups"),
         ("box", "boxes"), ("bridge", "bridges"), ("clock", "clocks"), ("table", "tables"),
         ("engine", "engines"), ("photo", "photos"), ("shoe", "shoes"), ("kite", "kites"),
         ("treasure", "treasures"), ("television", "televisions"), ("button", "buttons"),
         ("kitten", "kittens"), ("curtain", "curtains"), ("mountain", "mountains"), ("toy", "toys"),
         ("coin", "coins"), ("tire", "tires"), ("diary", "diaries"), ("mirror", "mirrors"),
         ("pear", "pears"), ("feather", "feathers"), ("thermometer", "thermometers"),
         ("cushion", "cushions"), ("wool sweater", "wool sweaters"), ("croissant", "croissants"),
         ("jalapeno", "jalapenos"), ("Wii remote", "Wii remotes"), ("garage door", "garage doors"),
         ("beige jacket", "beige jackets"), ("violin", "violins"), ("sandwich", "sandwiches"),
         ("bracelet", "bracelets"), ("tower", "towers"), ("pillow", "pillows"), ("guitar", "guitars")]
ADJECTIVES = ["red", "heavy", "broken", "quiet", "bright", "small", "strange", "wooden", "warm",
              "empty", "beautiful", "dusty", "green", "famous", "cheap", "narrow", "gentle",
              "noisy", "golden", "careful", "clever", "lovely", "ancient", "simple", "usual", "unusual",
              "visual", "casual", "curious", "quiet", "tired", "joyful", "loyal", "thick", "smooth",
              "rotten", "pure", "clear", "rare", "fair", "huge", "enormous", "thin", "shiny", "wet"]
# (base, past)
VERBS = [("paint", "painted"), ("carry", "carried"), ("find", "found"), ("buy", "bought"),
         ("clean", "cleaned"), ("open", "opened"), ("fix", "fixed"), ("sell", "sold"),
         ("lose", "lost"), ("bring", "brought"), ("move", "moved"), ("hide", "hid"),
         ("borrow", "borrowed"), ("build", "built"), ("count", "counted"), ("wrap", "wrapped"),
         ("draw", "drew"), ("check", "checked"), ("drop", "dropped"), ("keep", "kept"),
         ("enjoy", "enjoyed"), ("measure", "measured"), ("push", "pushed"), ("pull", "pulled"),
         ("throw", "threw"), ("choose", "chose"), ("wash", "washed"), ("cook", "cooked"),
         ("repair", "repaired"), ("share", "shared"), ("admire", "admired"), ("touch", "touched"),
         ("polish", "polished"), ("weigh", "weighed"), ("sew", "sewed"), ("soothe", "soothed")]
PLACES = ["near the river", "in the kitchen", "at the market", "behind the station",
          "under the bridge", "in the garden", "on the hill", "by the window", "at the library",
          "in the village", "across the street", "inside the old church", "at the harbour",
          "on the top floor", "in the forest", "beside the lake", "at the museum", "in the garage",
          "near Loch Ness", "in Provence", "in Argyll", "by the Llano river", "on the mountain",
          "at the theatre", "in the choir room", "near the fountain", "on the shore", "at the airport"]
TIMES = ["yesterday", "last night", "this morning", "on Monday", "every summer", "after lunch",
         "before dinner", "at midnight", "last winter", "on Friday evening", "in the afternoon",
         "two days ago", "early in the morning", "during the storm", "as usual", "on Thursday",
         "at the end of the year", "around noon", "in the spring"]
WEATHER = ["rains", "snows", "gets colder", "stays sunny", "turns windy"]
FEELINGS = ["happy", "surprised", "tired", "worried", "proud", "calm", "nervous", "glad", "thrilled",
            "annoyed", "embarrassed", "thoughtful", "curious", "joyful"]
VEHICLES = ["train", "bus", "ferry", "plane", "coach", "tram"]

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
        "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """0 <= n < 1000 as English words, e.g. 342 -> 'three hundred and forty-two'."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    rest = n % 100
    return ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))


def _count(r: random.Random) -> str:
    return number_words(r.choice([r.randint(2, 20), r.randint(21, 99), r.randint(100, 999)]))


def _thing(r: random.Random) -> str:
    return r.choice(["the ", "a ", "the " + r.choice(ADJECTIVES) + " "]) + r.choice(NOUNS)[0]


def _an_adjective(r: random.Random) -> str:
    word = r.choice(ADJECTIVES)
    return ("an " if word[0] in "aeiou" else "a ") + word


# Slot name -> Random -> words. Each {slot} of a template is drawn on its own; a capitalised
# slot name ({Who}) gives the same words with a capital first letter.
SLOTS = {
    "who": lambda r: r.choice(PEOPLE + NAMES),
    "person": lambda r: r.choice(PEOPLE),
    "name": lambda r: r.choice(NAMES),
    "do": lambda r: r.choice(VERBS)[0],
    "did": lambda r: r.choice(VERBS)[1],
    "noun": lambda r: r.choice(NOUNS)[0],
    "nouns": lambda r: r.choice(NOUNS)[1],
    "thing": _thing,
    "adj": lambda r: r.choice(ADJECTIVES),
    "an_adj": _an_adjective,
    "place": lambda r: r.choice(PLACES),
    "when": lambda r: r.choice(TIMES),
    "count": _count,
    "cents": lambda r: number_words(r.randint(1, 99)),
    "hour": lambda r: number_words(r.randint(1, 12)),
    "room": lambda r: number_words(r.randint(1, 999)),
    "weather": lambda r: r.choice(WEATHER),
    "feeling": lambda r: r.choice(FEELINGS),
    "vehicle": lambda r: r.choice(VEHICLES),
}
TEMPLATES = [
    "{Who} {did} {thing} {place} {when}.",
    "{When}, {name} {did} {count} {nouns}.",
    "Did {who} {do} {thing} {when}?",
    "Where did {name} {do} the {adj} {noun}?",
    "How many {nouns} are there {place}?",
    "Why is the {noun} {place} so {adj}?",
    "There are {count} {adj} {nouns} {place}.",
    "Please {do} the {noun} and put it {place}.",
    "If it {weather} tomorrow, we will {do} {thing}.",
    "{Name} said that the {noun} was {adj}, but nobody believed it.",
    "The {noun} costs {count} dollars and {cents} cents.",
    "What {an_adj} {noun} this is!",
    "{Name} and {name} {did} {count} {nouns} {when}.",
    "At {hour} o'clock, the {vehicle} left with {count} passengers.",
    "{Person} was {feeling} when the {noun} arrived {when}.",
    "Could you {do} {thing} for me, please?",
    "I think {name} will {do} the {nouns} {place}.",
    "Room {room} is {place}, next to the {noun}.",
    "Is the {adj} {noun} still {place}?",
    "Nobody knew why {person} {did} so many {nouns}.",
    "{Name} measured the {noun} with a thermometer {when}.",
    "Although it was {adj}, {person} enjoyed the {noun}.",
    "The television showed a {adj} treasure from the museum.",
    "{Name} thought the denouement of the story was {adj}.",
    "We usually {do} our {nouns} {place} on Thursday.",
    "Why would anyone {do} a {adj} {noun} at this hour?",
    "{Person} pressed the button, and the {noun} began to hum.",
    "Bring the {nouns} through the garage, then {do} them {place}.",
    "The choir sang a {adj} song {place} {when}.",
    "Three thousand tourists enjoyed the view {place}.",
    "Is it true that {name} ate a jalapeno and a croissant {when}?",
    "{Name} played on the Wii with {person} {when}.",
    "The {adj} {noun} is worth more than its weight in gold.",
    "Pure curiosity made {person} {do} the {noun}.",
    '{Name} said: "Please {do} the {noun} {when}."',
    "The {noun} was {adj}; the {nouns} were not.",
    "{Name} (who lives {place}) {did} {thing}.",
    "It was {adj} — far too {adj} for {name}.",
]


def _fill(template: str, r: random.Random) -> str:
    def draw(match: re.Match) -> str:
        slot = match.group(1)
        words = SLOTS[slot.lower()](r)
        return words[0].upper() + words[1:] if slot[0].isupper() else words

    return re.sub(r"\{(\w+)\}", draw, template)


def sentences(n: int, seed: int = 0) -> list[str]:
    """`n` distinct sentences, the same for the same (n, seed); a longer list extends a shorter one."""
    r = random.Random(f"builtin-sentences-{seed}")
    out: list[str] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise RuntimeError(f"the grammar cannot give {n} distinct sentences")
        text = _fill(r.choice(TEMPLATES), r)
        key = text.lower()
        if key in seen or not MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            continue
        seen.add(key)
        out.append(text)
    return out
