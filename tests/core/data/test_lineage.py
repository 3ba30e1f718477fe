"""Per-ticker fingerprints and the partition ranges that recompute exactly what changed."""

from hypothesis import given
from hypothesis import strategies as st

from ploutos_core.data.lineage import contiguous_ranges, diff_fingerprints, ticker_fingerprints
from ploutos_core.data.sample import make_market


def test_fingerprints_change_only_for_the_edited_ticker() -> None:
    market = make_market(4, 300, seed=3)
    before = ticker_fingerprints(market)
    edited = market.copy()
    target = sorted(before)[2]
    edited.loc[edited.index[edited["ticker"] == target][-1], "volume"] += 1
    changes = diff_fingerprints(before, ticker_fingerprints(edited))
    assert changes.changed == (target,)
    assert changes.new == () and changes.removed == ()


def test_new_and_removed_tickers() -> None:
    changes = diff_fingerprints({"A": "1", "B": "2"}, {"B": "2", "C": "3"})
    assert (changes.new, changes.changed, changes.removed) == (("C",), (), ("A",))
    assert changes.to_recompute == ("C",)


def test_contiguous_ranges_example() -> None:
    ordered = ["A", "B", "C", "D", "E"]
    assert contiguous_ranges(ordered, {"B", "C", "E"}) == [("B", "C"), ("E", "E")]
    assert contiguous_ranges(ordered, set()) == []


@given(st.lists(st.booleans(), max_size=30))
def test_contiguous_ranges_cover_exactly_the_subset(flags: list[bool]) -> None:
    ordered = [f"T{i:02d}" for i in range(len(flags))]
    subset = {key for key, flag in zip(ordered, flags, strict=True) if flag}
    ranges = contiguous_ranges(ordered, subset)
    covered = set()
    for first, last in ranges:
        covered |= set(ordered[ordered.index(first) : ordered.index(last) + 1])
    assert covered == subset
    starts = [ordered.index(first) for first, _ in ranges]
    ends = [ordered.index(last) for _, last in ranges]
    assert all(end + 1 < start for end, start in zip(ends, starts[1:], strict=False))
