"""Receipt kinds renamed with tag sets and private releases still find the receipts issued
under their first names."""

from __future__ import annotations

from pavilion.privacy.receipts import KINDS, RENAMED_KINDS, kinds_matching


def test_a_filter_by_a_kind_matches_its_old_name_too() -> None:
    assert kinds_matching("psi.tag_set") == ["psi.tag_set", "psi.roster"]
    assert kinds_matching("dp.release") == ["differential.release", "dp.release"]
    assert kinds_matching("psi.lookup") == ["psi.lookup"]
    assert set(RENAMED_KINDS.values()) <= set(KINDS)
    assert not set(RENAMED_KINDS) & set(KINDS)
