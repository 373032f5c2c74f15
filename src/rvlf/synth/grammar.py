"""The demo corpus's grammar: sign (gloss) sequences and their English phrasings.

Sign order follows common sign-language patterns, not English: time first, the place and the
object as topic, adjectives and numbers after the noun, the verb last, and negation, modals and
question words sentence-final (`YESTERDAY STORE CAR RED MOTHER BUY` = "yesterday my mother bought
a red car at the store"). The English side has several valid phrasings per gloss sequence
(synonyms, optional or alternative function words, the time adverb in front or at the end),
each with a probability; the reference is drawn from them, so no model can score 100 and a
sentence-level reward has something to optimise (Sec. 3.3).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

Alts = list[tuple[str, float]]  # alternative phrasings with their probabilities

# --- lexicon: gloss -> English alternatives ------------------------------------------------
# People: gloss -> (noun alternatives, kind). kind: "fam" takes my/our, "role" takes the/my.
PEOPLE = {
    "MOTHER": (["mother:.6", "mom:.4"], "fam"), "FATHER": (["father:.6", "dad:.4"], "fam"),
    "BROTHER": (["brother"], "fam"), "SISTER": (["sister"], "fam"),
    "UNCLE": (["uncle"], "fam"), "AUNT": (["aunt"], "fam"),
    "GRANDFATHER": (["grandfather:.5", "grandpa:.5"], "fam"),
    "GRANDMOTHER": (["grandmother:.5", "grandma:.5"], "fam"),
    "COUSIN": (["cousin"], "fam"), "SON": (["son"], "fam"), "DAUGHTER": (["daughter"], "fam"),
    "FRIEND": (["friend"], "role"), "TEACHER": (["teacher"], "role"), "DOCTOR": (["doctor"], "role"),
    "STUDENT": (["student"], "role"), "NEIGHBOUR": (["neighbour:.7", "neighbor:.3"], "role"),
    "BOSS": (["boss"], "role"), "NURSE": (["nurse"], "role"), "DRIVER": (["driver"], "role"),
    "CHILD": (["child:.6", "kid:.4"], "role"),
}
PRONOUNS = {"IX-1": "i", "IX-2": "you"}

# Objects: gloss -> (noun alternatives, countable, class).
OBJECTS = {
    "APPLE": (["apple"], True, "food"), "BREAD": (["bread"], False, "food"),
    "CAKE": (["cake"], True, "food"), "SOUP": (["soup"], False, "food"),
    "FISH": (["fish"], True, "food"), "EGG": (["egg"], True, "food"),
    "RICE": (["rice"], False, "food"), "CHEESE": (["cheese"], False, "food"),
    "COFFEE": (["coffee"], False, "drink"), "TEA": (["tea"], False, "drink"),
    "WATER": (["water"], False, "drink"), "MILK": (["milk"], False, "drink"),
    "JUICE": (["juice"], False, "drink"),
    "BOOK": (["book"], True, "read"), "LETTER": (["letter"], True, "read"),
    "NEWSPAPER": (["newspaper:.7", "paper:.3"], True, "read"),
    "CAR": (["car"], True, "vehicle"), "BIKE": (["bike:.6", "bicycle:.4"], True, "vehicle"),
    "PHONE": (["phone:.7", "mobile:.3"], True, "thing"),
    "COMPUTER": (["computer:.7", "laptop:.3"], True, "thing"),
    "KEY": (["key"], True, "thing"), "BAG": (["bag"], True, "thing"),
    "CHAIR": (["chair"], True, "thing"), "TABLE": (["table"], True, "thing"),
    "PICTURE": (["picture:.6", "photo:.4"], True, "thing"),
    "FLOWER": (["flower"], True, "thing"), "TICKET": (["ticket"], True, "thing"),
    "SHOE": (["shoe"], True, "wear"), "SHIRT": (["shirt"], True, "wear"),
    "HAT": (["hat:.7", "cap:.3"], True, "wear"), "JACKET": (["jacket:.6", "coat:.4"], True, "wear"),
    "DOG": (["dog"], True, "animal"), "CAT": (["cat"], True, "animal"),
}

PLACES = {
    "SCHOOL": ["school"], "HOSPITAL": ["hospital"], "STORE": ["store:.6", "shop:.4"],
    "PARK": ["park"], "OFFICE": ["office"], "LIBRARY": ["library"],
    "STATION": ["station:.7", "train station:.3"], "MARKET": ["market"],
    "RESTAURANT": ["restaurant"], "KITCHEN": ["kitchen"], "GARDEN": ["garden"],
    "BEACH": ["beach"], "CITY": ["city:.7", "town:.3"], "CHURCH": ["church"], "BANK": ["bank"],
}

# Transitive verbs: gloss -> (alternatives "base|3sg|past", object classes).
VERBS_T = {
    "BUY": (["buy|buys|bought:.7", "purchase|purchases|purchased:.3"], "food drink read vehicle thing wear animal"),
    "SELL": (["sell|sells|sold"], "food read vehicle thing wear animal"),
    "SEE": (["see|sees|saw:.6", "notice|notices|noticed:.4"], "vehicle thing wear animal"),
    "LIKE": (["like|likes|liked:.6", "love|loves|loved:.4"], "food drink read vehicle thing wear animal"),
    "WANT": (["want|wants|wanted"], "food drink read vehicle thing wear animal"),
    "NEED": (["need|needs|needed"], "food drink read vehicle thing wear"),
    "EAT": (["eat|eats|ate"], "food"), "DRINK": (["drink|drinks|drank"], "drink"),
    "READ": (["read|reads|read"], "read"), "WRITE": (["write|writes|wrote"], "read"),
    "COOK": (["cook|cooks|cooked:.6", "make|makes|made:.4"], "food"),
    "CLEAN": (["clean|cleans|cleaned"], "vehicle thing wear"),
    "WASH": (["wash|washes|washed"], "vehicle thing wear animal"),
    "FIND": (["find|finds|found"], "read vehicle thing wear animal"),
    "LOSE": (["lose|loses|lost"], "read thing wear"),
    "BRING": (["bring|brings|brought"], "food drink read thing wear"),
    "FIX": (["fix|fixes|fixed:.6", "repair|repairs|repaired:.4"], "vehicle thing wear"),
    "PAINT": (["paint|paints|painted"], "vehicle thing"),
    "CARRY": (["carry|carries|carried"], "read thing"),
    "ORDER": (["order|orders|ordered"], "food drink read thing"),
    "FEED": (["feed|feeds|fed"], "animal"), "BORROW": (["borrow|borrows|borrowed"], "read vehicle thing"),
}
# Intransitive verbs with a place: gloss -> (alternatives, preposition alternatives).
VERBS_I = {
    "GO": (["go|goes|went"], ["to:1"]), "COME": (["come|comes|came"], ["to:1"]),
    "WORK": (["work|works|worked"], ["at:.6", "in:.4"]), "WAIT": (["wait|waits|waited"], ["at:.7", "in:.3"]),
    "SLEEP": (["sleep|sleeps|slept"], ["at:.5", "in:.5"]), "PLAY": (["play|plays|played"], ["in:.6", "at:.4"]),
    "RUN": (["run|runs|ran:.7", "jog|jogs|jogged:.3"], ["in:.6", "to:.4"]),
    "STUDY": (["study|studies|studied:.7", "learn|learns|learned:.3"], ["at:.6", "in:.4"]),
}
ADJECTIVES = {
    "BIG": ["big:.6", "large:.4"], "SMALL": ["small:.6", "little:.4"], "NEW": ["new"], "OLD": ["old"],
    "CHEAP": ["cheap"], "EXPENSIVE": ["expensive"], "HOT": ["hot:.7", "warm:.3"], "COLD": ["cold"],
    "GOOD": ["good:.6", "nice:.4"], "BAD": ["bad"], "BEAUTIFUL": ["beautiful:.6", "pretty:.4"],
    "DIRTY": ["dirty"], "HEAVY": ["heavy"], "BROKEN": ["broken"], "FRESH": ["fresh"],
    "RED": ["red"], "BLUE": ["blue"], "GREEN": ["green"], "YELLOW": ["yellow"],
    "BLACK": ["black"], "WHITE": ["white"],
}
ADJ_FOR = {"food": "BIG SMALL CHEAP EXPENSIVE HOT COLD GOOD BAD FRESH", "drink": "HOT COLD CHEAP EXPENSIVE GOOD",
           "read": "NEW OLD BIG SMALL GOOD BAD HEAVY RED BLUE GREEN YELLOW BLACK WHITE",
           "vehicle": "BIG SMALL NEW OLD CHEAP EXPENSIVE DIRTY BROKEN BEAUTIFUL RED BLUE GREEN YELLOW BLACK WHITE",
           "thing": "BIG SMALL NEW OLD CHEAP EXPENSIVE DIRTY BROKEN HEAVY BEAUTIFUL RED BLUE GREEN YELLOW BLACK WHITE",
           "wear": "NEW OLD CHEAP EXPENSIVE DIRTY BEAUTIFUL RED BLUE GREEN YELLOW BLACK WHITE",
           "animal": "BIG SMALL OLD BEAUTIFUL DIRTY BLACK WHITE"}
NUMBERS = {"TWO": "two", "THREE": "three", "FOUR": "four", "FIVE": "five", "SIX": "six",
           "SEVEN": "seven", "EIGHT": "eight", "NINE": "nine", "TEN": "ten"}
# Time signs: gloss -> (English alternatives, tense).
TIMES = {
    "YESTERDAY": (["yesterday"], "past"), "LAST-WEEK": (["last week"], "past"),
    "TOMORROW": (["tomorrow"], "future"), "NEXT-WEEK": (["next week"], "future"),
    "MORNING": (["this morning:.6", "in the morning:.4"], "past"), "TONIGHT": (["tonight:.7", "this evening:.3"], "future"),
    "MONDAY": (["on monday:.6", "monday:.4"], "future"), "TUESDAY": (["on tuesday:.6", "tuesday:.4"], "future"),
    "WEDNESDAY": (["on wednesday:.6", "wednesday:.4"], "future"), "THURSDAY": (["on thursday:.6", "thursday:.4"], "future"),
    "FRIDAY": (["on friday:.6", "friday:.4"], "future"), "SATURDAY": (["on saturday:.6", "saturday:.4"], "future"),
    "SUNDAY": (["on sunday:.6", "sunday:.4"], "future"),
    "ALWAYS": (["always"], "habit"), "OFTEN": (["often"], "habit"), "SOMETIMES": (["sometimes"], "habit"),
}
MARKERS = ("NOT", "NEVER", "FINISH", "CAN", "MUST", "QM", "WHO", "WHAT", "WHERE")

# Sign groups told apart ONLY by the face (mouthing / expression) or ONLY by hand shape.
FACE_PAIRS = [("BROTHER", "SISTER"), ("UNCLE", "AUNT"), ("GRANDFATHER", "GRANDMOTHER"), ("COFFEE", "TEA"),
              ("CHEAP", "EXPENSIVE"), ("HOT", "COLD"), ("BIG", "SMALL"), ("SON", "DAUGHTER")]
HANDSHAPE_GROUPS = [("RED", "BLUE", "GREEN", "YELLOW", "BLACK", "WHITE"),
                    ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"),
                    ("TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN"),
                    ("EAT", "DRINK"), ("READ", "WRITE")]


def all_glosses() -> list[str]:
    """Every gloss of the lexicon, in a fixed order."""
    groups = [PEOPLE, PRONOUNS, OBJECTS, PLACES, VERBS_T, VERBS_I, ADJECTIVES, NUMBERS, TIMES]
    return [g for group in groups for g in group] + list(MARKERS)


# --- phrase algebra: a phrase is a list of (text, probability) ---------------------------
def _alts(specs: list[str]) -> Alts:
    """["mother:.6", "mom:.4"] -> [("mother", .6), ("mom", .4)]; no weight = 1."""
    out = []
    for s in specs:
        text, _, w = s.rpartition(":") if ":" in s else (s, "", "1")
        out.append((text, float(w)))
    return out


def _seq(*parts: Alts) -> Alts:
    """Concatenation: the product of the parts' alternatives (equal texts merged)."""
    acc: dict[str, float] = {}
    for combo in itertools.product(*parts):
        text = " ".join(t for t, _ in combo if t)
        acc[text] = acc.get(text, 0.0) + float(np.prod([w for _, w in combo]))
    return list(acc.items())


def _either(*options: tuple[Alts, float]) -> Alts:
    """Union of phrasings, each option scaled by its weight."""
    acc: dict[str, float] = {}
    for alts, w in options:
        for t, p in alts:
            acc[t] = acc.get(t, 0.0) + w * p
    return list(acc.items())


def _one(text: str) -> Alts:
    return [(text, 1.0)]


def _third(base: str) -> str:
    if base.endswith(("s", "sh", "ch", "x", "o")):
        return base + "es"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ies"
    return base + "s"


@dataclass(frozen=True)
class Sentence:
    """One gloss sequence and every valid English phrasing of it (probabilities sum to 1)."""

    gloss: tuple[str, ...]
    phrasings: tuple[str, ...]
    weights: tuple[float, ...]
    question: bool

    def draw(self, rng: np.random.Generator) -> str:
        """The reference: one phrasing drawn by probability."""
        return self.phrasings[int(rng.choice(len(self.phrasings), p=np.asarray(self.weights)))]


# --- English realisation ------------------------------------------------------------------
def _subject(g: str) -> tuple[Alts, bool]:
    """Subject phrase and whether it takes 3rd-person-singular agreement."""
    if g in PRONOUNS:
        return _one(PRONOUNS[g]), False
    nouns, kind = PEOPLE[g]
    det = _alts(["my:.7", "our:.3"] if kind == "fam" else ["the:.6", "my:.4"])
    return _seq(det, _alts(nouns)), True


def _object(g: str, adj: str | None, num: str | None) -> Alts:
    nouns, countable, _ = OBJECTS[g]
    noun = _alts(nouns)
    adjp = _alts(ADJECTIVES[adj]) if adj else _one("")
    if num:
        return _seq(_one(NUMBERS[num]), adjp, [(n if n == "fish" else n + "s", p) for n, p in noun])
    if not countable:
        return _seq(_alts(["the:.5", ":.5"]), adjp, noun)
    det = [(d, p) for d, p in _alts(["a:.6", "the:.4"])]
    out = []
    for (d, pd), (a, pa), (n, pn) in itertools.product(det, adjp, noun):
        if d == "a" and (a or n)[0] in "aeiou":
            d = "an"
        out.append((" ".join(x for x in (d, a, n) if x), pd * pa * pn))
    return _either((out, 1.0))


def _verb(forms: Alts, tense: str, third: bool, subj_i: bool, mood: str) -> tuple[Alts, Alts | None]:
    """Verb group for `tense` (past/future/habit) and `mood` (pos/neg/can/must/never/q).

    Returns (verb phrase, question auxiliary fronted before the subject or None)."""
    split = [(f.split("|"), p) for f, p in forms]
    base = [(b, p) for (b, _, _), p in split]
    s3 = [(s, p) for (_, s, _), p in split]
    past = [(pa, p) for (_, _, pa), p in split]
    do = "does" if third else "do"
    be = "is" if third else ("am" if subj_i else "are")
    if mood == "q":
        aux = {"past": "did", "future": "will", "habit": do}[tense]
        return base, _one(aux)
    if mood == "can":
        return _seq(_alts(["can:.7", f"{be} able to:.3"]), base), None
    if mood == "must":
        return _seq(_alts(["must:.5", f"{'has' if third else 'have'} to:.5"]), base), None
    if mood == "never":
        return _seq(_one("never"), past if tense == "past" else (s3 if third else base)), None
    if mood == "neg":
        aux = {"past": ["did not:.5", "didn't:.5"], "future": ["will not:.4", "won't:.6"],
               "habit": [f"{do} not:.5", f"{do}n't:.5"]}[tense]
        return _seq(_alts(aux), base), None
    if tense == "past":
        return past, None
    if tense == "future":
        return _either((_seq(_one("will"), base), 0.6), (_seq(_one(f"{be} going to"), base), 0.4)), None
    return (s3 if third else base), None


def realise(frame: dict) -> Sentence:
    """A sentence frame (slots filled with glosses) -> sign order and English phrasings."""
    subj, verb, obj, adj, num = (frame.get(k) for k in ("subj", "verb", "obj", "adj", "num"))
    place, time, mood, wh = (frame.get(k) for k in ("place", "time", "mood", "wh"))
    tense = TIMES[time][1] if time else ("past" if mood == "finish" else "habit")
    if time and TIMES[time][1] == "future" and mood == "finish":
        tense = "past"
    if mood == "never":
        tense = "habit" if tense == "future" else tense
    # sign order: TIME PLACE OBJ ADJ NUM SUBJ VERB [FINISH] [NOT/NEVER/CAN/MUST] [QM/WH]
    gloss = [g for g in (time, place) if g]
    if obj and wh != "WHAT":
        gloss += [g for g in (obj, adj, num) if g]
    if wh != "WHO":
        gloss.append(subj)
    gloss.append(verb)
    gloss += {"finish": ["FINISH"], "neg": ["NOT"], "never": ["NEVER"], "can": ["CAN"], "must": ["MUST"]}.get(mood, [])
    if wh:
        gloss.append(wh)
    elif mood == "q":
        gloss.append("QM")

    transitive = verb in VERBS_T
    forms = _alts(VERBS_T[verb][0] if transitive else VERBS_I[verb][0])
    s_alts, third = _subject(subj) if subj else (_one("who"), True)
    v_mood = "q" if (mood == "q" or (wh in ("WHAT", "WHERE") and mood in (None, "finish"))) else (
        mood if mood in ("neg", "never", "can", "must") else "pos")
    if wh == "WHO":
        v_mood = mood if mood in ("neg", "never", "can", "must") else "pos"
    vp, aux = _verb(forms, tense, third, subj == "IX-1", v_mood)
    if transitive:
        comp = _object(obj, adj, num) if wh != "WHAT" else _one("")
    else:
        comp = _one("")
    if place:
        prep = _alts(VERBS_I[verb][1]) if not transitive else _alts(["at:.6", "in:.4"])
        loc = _seq(prep, _one("the"), _alts(PLACES[place])) if wh != "WHERE" else _one("")
    else:
        loc = _one("")
    time_p = _alts(TIMES[time][0]) if time else _one("")
    if wh == "WHO":
        core = _seq(_one("who"), vp, comp, loc)
    elif aux is not None:  # question: aux-fronting, wh-word first
        lead = _one({"WHAT": "what", "WHERE": "where"}.get(wh, ""))
        core = _seq(lead, aux, s_alts, vp, comp, loc)
    else:
        core = _seq(s_alts, vp, comp, loc)
    if mood == "finish" and not time and not wh:
        core = _either((core, 0.6), (_seq(core, _one("already")), 0.4))
    if time:
        phr = _either((_seq(time_p, core), 0.5), (_seq(core, time_p), 0.5))
    else:
        phr = core
    question = bool(wh) or mood == "q"
    phr = sorted(((t + ("?" if question else "")), p) for t, p in phr)
    total = sum(p for _, p in phr)
    return Sentence(tuple(gloss), tuple(t for t, _ in phr), tuple(p / total for _, p in phr), question)


def sample_frame(rng: np.random.Generator) -> dict:
    """Draw one sentence frame (the slots) from the grammar."""
    def pick(seq):
        seq = list(seq)
        return seq[int(rng.integers(len(seq)))]

    subj = pick(list(PEOPLE) + list(PRONOUNS)) if rng.random() < 0.85 else pick(PEOPLE)
    frame: dict = {"subj": subj}
    if rng.random() < 0.7:
        verb = pick(VERBS_T)
        obj = pick(g for g, v in OBJECTS.items() if v[2] in VERBS_T[verb][1].split())
        frame.update(verb=verb, obj=obj)
        cls = OBJECTS[obj][2]
        if rng.random() < 0.5:
            frame["adj"] = pick(ADJ_FOR[cls].split())
        if OBJECTS[obj][1] and rng.random() < 0.25:
            frame["num"] = pick(NUMBERS)
        if rng.random() < 0.3:
            frame["place"] = pick(PLACES)
    else:
        frame.update(verb=pick(VERBS_I), place=pick(PLACES))
    if rng.random() < 0.6:
        frame["time"] = pick(TIMES)
    r = rng.random()
    moods = [(0.15, "neg"), (0.05, "never"), (0.08, "can"), (0.06, "must"), (0.1, "q"), (0.08, "finish")]
    for p, m in moods:
        if r < p:
            frame["mood"] = m
            break
        r -= p
    if frame.get("mood") in (None, "finish", "q") and rng.random() < 0.12:
        frame["mood"] = None if frame.get("mood") == "q" else frame.get("mood")
        choices = ["WHO"] + (["WHAT"] if "obj" in frame else []) + (["WHERE"] if "place" in frame else [])
        frame["wh"] = pick(choices)
        if frame["wh"] == "WHAT":
            frame.pop("adj", None), frame.pop("num", None)
    if frame.get("time") and TIMES[frame["time"]][1] == "habit" and frame.get("mood") in ("finish", "never"):
        frame.pop("time")
    return frame


@dataclass(frozen=True)
class Splits:
    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence]


def build_splits(seed: int, n_train: int, n_dev: int, n_test: int) -> Splits:
    """Distinct gloss sequences: train first, then dev/test sequences never seen in train (nor
    in each other) whose signs all occur in train."""
    rng = np.random.default_rng([seed, 1])
    seen: set[tuple[str, ...]] = set()
    out: list[list[Sentence]] = [[], [], []]
    vocab: set[str] = set()
    for split, n in enumerate((n_train, n_dev, n_test)):
        tries = 0
        while len(out[split]) < n:
            tries += 1
            if tries > 200 * n + 10_000:
                raise RuntimeError(f"grammar cannot supply {n} distinct sentences")
            s = realise(sample_frame(rng))
            if s.gloss in seen or (split > 0 and not vocab.issuperset(s.gloss)):
                continue
            seen.add(s.gloss)
            out[split].append(s)
            if split == 0:
                vocab.update(s.gloss)
    return Splits(*out)
