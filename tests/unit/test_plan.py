"""The best-subtest rule and the inherit_best_from merge: the two functions that decide what T5 and
T6 runs contain. Each assertion here fails if the rule is inverted or an inherited file is dropped."""

from __future__ import annotations

from tierbench.plan import BEST_SUBTEST_TIE, SubtestScores, best_of, choose_best, merge_inherited
from tierbench.spec import Subtest, ToolsSpec


def test_the_highest_median_wins_even_when_it_costs_more_tokens():
    best = choose_best("T1", [SubtestScores("01", [0.2, 0.3, 0.4], mean_tokens=10.0),
                              SubtestScores("02", [0.9, 1.0, 0.1], mean_tokens=5000.0),
                              SubtestScores("03", [0.5, 0.6, 0.5], mean_tokens=100.0)])
    assert best is not None and best.subtest == "02"
    assert best.median_score == 0.9 and best.mean_tokens == 5000.0
    assert best.candidates == {"01": {"median_score": 0.3, "mean_tokens": 10.0, "runs": 3},
                               "02": {"median_score": 0.9, "mean_tokens": 5000.0, "runs": 3},
                               "03": {"median_score": 0.5, "mean_tokens": 100.0, "runs": 3}}


def test_the_median_not_the_mean_decides():
    # 01: mean 0.63, median 0.95; 02: mean 0.7, median 0.7.
    best = choose_best("T2", [SubtestScores("01", [0.0, 0.95, 0.95], mean_tokens=1.0),
                              SubtestScores("02", [0.7, 0.7, 0.7], mean_tokens=1.0)])
    assert best is not None and best.subtest == "01"


def test_medians_within_the_tie_band_go_to_fewer_tokens():
    close = 0.9 - BEST_SUBTEST_TIE / 2
    best = choose_best("T1", [SubtestScores("01", [0.9], mean_tokens=800.0),
                              SubtestScores("02", [close], mean_tokens=200.0),
                              SubtestScores("03", [0.9], mean_tokens=400.0)])
    assert best is not None and best.subtest == "02"
    # Just outside the band the higher median wins despite its tokens.
    apart = 0.9 - BEST_SUBTEST_TIE * 2
    best = choose_best("T1", [SubtestScores("01", [0.9], mean_tokens=800.0),
                              SubtestScores("02", [apart], mean_tokens=200.0)])
    assert best is not None and best.subtest == "01"


def test_equal_medians_and_tokens_pick_the_lower_id_and_unscored_subtests_never_win():
    assert best_of({"02": 0.5, "01": 0.5}, {"02": 3.0, "01": 3.0}) == "01"
    assert choose_best("T1", [SubtestScores("01", [], mean_tokens=0.0)]) is None
    best = choose_best("T1", [SubtestScores("01", [], mean_tokens=0.0), SubtestScores("02", [0.1], 9.0)])
    assert best is not None and best.subtest == "02" and set(best.candidates) == {"02"}


def _sub(tier: str, sid: str, **fields: object) -> Subtest:
    return Subtest(tier=tier, id=sid, **fields)


def test_merge_keeps_every_inherited_file_and_lets_the_subtest_win_conflicts():
    t1 = _sub("T1", "02", files={"CLAUDE.md": "from T1", "skills/a.md": "skill a"}, env={"A": "1", "B": "t1"},
              agent_args=["--x", "--shared"], tools=ToolsSpec(enabled=["Read"], disabled=["WebFetch"]),
              model="m-t1", max_turns=5)
    t3 = _sub("T3", "01", files={"tools/b.json": "tool b", "CLAUDE.md": "from T3"}, env={"B": "t3", "C": "3"},
              agent_args=["--shared", "--y"], tools=ToolsSpec(enabled=["Bash"]), model="m-t3",
              system_prompt_mode="default")
    own = _sub("T5", "01", files={"CLAUDE.md": "own"}, env={"C": "own"}, agent_args=["--z"],
               inherit_best_from=["T1", "T3"], max_turns=9)
    merged = merge_inherited(own, [t1, t3])
    assert merged.files == {"CLAUDE.md": "own", "skills/a.md": "skill a", "tools/b.json": "tool b"}
    assert merged.env == {"A": "1", "B": "t3", "C": "own"}
    assert merged.agent_args == ["--x", "--shared", "--y", "--z"]
    assert merged.tools == ToolsSpec(enabled=["Bash", "Read"], disabled=["WebFetch"])
    assert merged.model == "m-t1"  # the first inherited subtest that sets it
    assert merged.system_prompt_mode == "default" and merged.max_turns == 9
    assert merged.inherited_from == ["T1/02", "T3/01"]
    assert (merged.tier, merged.id, merged.inherit_best_from) == ("T5", "01", ["T1", "T3"])


def test_merge_without_inherited_subtests_changes_nothing_but_the_record():
    own = _sub("T6", "01", files={"a": "1"}, inherit_best_from=["T5"])
    merged = merge_inherited(own, [])
    assert merged.files == {"a": "1"} and merged.tools is None and merged.inherited_from == []


def test_all_tools_from_any_source_means_all_tools():
    merged = merge_inherited(_sub("T5", "01", tools=ToolsSpec(enabled=["Read"])),
                             [_sub("T2", "01", tools=ToolsSpec(enabled=None, disabled=["X"]))])
    assert merged.tools == ToolsSpec(enabled=None, disabled=["X"])
