"""The named splits keep choosing and reporting apart; the interval we report is the Wilson score one."""

import pytest

from haltingvt.splits import SPLITS, wilson_interval
from haltingvt.synth.scenes import TEST_SEEDS, TRAIN_SEEDS, VALIDATION_SEEDS


def test_seed_namespaces_are_disjoint_and_the_splits_sit_in_theirs():
    assert not set(TRAIN_SEEDS) & set(VALIDATION_SEEDS) and not set(VALIDATION_SEEDS) & set(TEST_SEEDS)
    assert SPLITS["validation"].seed in VALIDATION_SEEDS and SPLITS["test"].seed in TEST_SEEDS
    assert SPLITS["test"].count >= 2 * SPLITS["validation"].count  # the report's interval is the narrower one


def test_merge_eval_chooses_on_a_validation_seed():
    from haltingvt.merge_eval import VALIDATION_SEED

    assert VALIDATION_SEED in VALIDATION_SEEDS


@pytest.mark.parametrize("n", [10, 48, 480])
def test_wilson_interval_at_the_edges_has_its_closed_form(n):
    z2 = 1.96 ** 2
    assert wilson_interval(n, n)[0] == pytest.approx(n / (n + z2)) and wilson_interval(n, n)[1] == pytest.approx(1.0)
    assert wilson_interval(0, n)[1] == pytest.approx(z2 / (n + z2)) and wilson_interval(0, n)[0] == pytest.approx(0.0, abs=1e-12)


def test_wilson_bounds_are_where_the_score_test_stops_rejecting():
    """Its definition: the proportions p0 at which |p_hat - p0| = z * sqrt(p0 (1 - p0) / n)."""
    for correct, n in ((228, 240), (219, 240), (455, 480), (45, 48)):
        p_hat = correct / n
        lo, hi = wilson_interval(correct, n)
        assert lo < p_hat < hi
        for p0 in (lo, hi):
            assert abs(p_hat - p0) == pytest.approx(1.96 * (p0 * (1 - p0) / n) ** 0.5, rel=1e-9)
    assert wilson_interval(456, 480)[1] - wilson_interval(456, 480)[0] < wilson_interval(228, 240)[1] - wilson_interval(228, 240)[0]
