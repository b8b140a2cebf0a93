"""What the end-to-end benchmark prints: a table per concurrency level, the connector's CPU per
verification by stage beside the budget (``bench/budget.json``), the headline lines (names
fixed so that figures can be followed from run to run) and the budget check of ``--check``."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from e2e.load import LevelResult

BUDGET_FILE: Final = Path(__file__).resolve().parent.parent / "budget.json"
HEADLINE_LEVEL: Final = 100
P999_TARGET_MS: Final = 500.0
RATIO_TARGET: Final = 0.3
ADDED_P99_TARGET_MS: Final = 10.0
#: The stages of a verification in the order a request meets them, then the remainder.
STAGE_ROWS: Final = ("http", "admit", "plan", "fetch", "decide", "issue", "persist", "other")


@dataclass(frozen=True)
class Budget:
    """Connector CPU per verification, in ms: the total, per stage, and the check's slack."""

    total_ms: float
    stages_ms: dict[str, float]
    tolerance: float

    @classmethod
    def load(cls, path: Path = BUDGET_FILE) -> Budget:
        document = json.loads(path.read_text("utf-8"))
        return cls(
            float(document["total_ms"]),
            {str(k): float(v) for k, v in document["stages_ms"].items()},
            float(document["tolerance"]),
        )

    @property
    def limit_ms(self) -> float:
        return self.total_ms * self.tolerance


@dataclass
class DatabaseRun:
    """The connector measured on one database with some number of worker processes."""

    label: str  # sqlite, postgres, postgres:2
    suffix: str  # of headline names: "", _postgres, _postgres_2w
    workers: int
    results: list[tuple[LevelResult, LevelResult]]  # (direct baseline, connector) per level
    failure: str | None = None

    def at(self, level: int) -> tuple[LevelResult, LevelResult] | None:
        return next((pair for pair in self.results if pair[1].concurrency == level), None)

    @property
    def headline(self) -> tuple[LevelResult, LevelResult] | None:
        """The pair at concurrency 100, or at the highest level measured."""
        if not self.results:
            return None
        return self.at(HEADLINE_LEVEL) or max(self.results, key=lambda p: p[1].concurrency)

    def cpu_ms_per_request(self) -> float | None:
        pair = self.headline
        return None if pair is None else pair[1].cpu_per_request("connector")


def load_average() -> str:
    try:
        return " ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "n/a"


def fmt_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def fmt_cpu(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base and not math.isnan(base) else "n/a"


def print_level(label: str, direct: LevelResult, connector: LevelResult, seconds: float) -> None:
    print(f"\n[{label}] concurrency {direct.concurrency} ({seconds:g} s measured per target)")
    print(
        f"{'target':<10} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p99.9 ms':>9} | cpu ms/req: {'loadgen':>7} {'agent':>6} {'conn':>6} {'pg':>6} "
        "| others"
    )
    for r in (direct, connector):
        cpu = " ".join(
            f"{fmt_cpu(r.cpu_per_request(w)):>{width}}"
            for w, width in (("loadgen", 7), ("agent", 6), ("connector", 6), ("postgres", 6))
        )
        others = "-" if r.other_cores is None else f"{r.other_cores:.2f} cores"
        print(
            f"{r.target:<10} {r.requests:>9} {r.errors.total():>7} {r.throughput:>8.0f} "
            f"{fmt_ms(r.percentile(50)):>8} {fmt_ms(r.percentile(99)):>8} "
            f"{fmt_ms(r.percentile(99.9)):>9} | {'':>11} {cpu} | {others}"
        )
    added = [connector.percentile(q) - direct.percentile(q) for q in (50, 99, 99.9)]
    print(
        f"{'added':<10} {'':>9} {'':>7} {'':>8} {fmt_ms(added[0]):>8} {fmt_ms(added[1]):>8} "
        f"{fmt_ms(added[2]):>9}   (the direct agent was measured once, before the databases)"
    )
    if connector.decisions:
        mix = ", ".join(f"{k} {v}" for k, v in sorted(connector.decisions.items()))
        print(f"connector decisions: {mix}")
    for r in (direct, connector):
        if r.errors:
            print(f"!! {r.target} errors at concurrency {r.concurrency}: {dict(r.errors)}")
            for sample in r.error_samples:
                print(f"   {sample}")


def print_stage_table(label: str, connector: LevelResult, budget: Budget) -> None:
    """Connector CPU ms per verification per stage, the remainder outside tasks, the total."""
    per = connector.stages_per_request()
    if per is None:
        print(f"[{label}] no stage figures (stage timing off, or /metrics unreadable)")
        return
    print(
        f"\n[{label}] connector CPU per verification by stage, concurrency "
        f"{connector.concurrency} ({connector.requests:,} verifications)"
    )
    print(f"{'stage':<15} {'ms/verif':>9} {'budget':>7} {'share':>6}")
    rows = [*STAGE_ROWS, *sorted(set(per) - {*STAGE_ROWS, "outside", "total"}), "outside"]
    for name in rows:
        if name not in per:
            continue
        limit = budget.stages_ms.get(name)
        over = " over" if limit is not None and per[name] > limit * budget.tolerance else ""
        print(
            f"{name if name != 'outside' else 'outside tasks':<15} {per[name]:>9.3f} "
            f"{'-' if limit is None else f'{limit:.2f}':>7} "
            f"{per[name] / per['total'] * 100 if per['total'] else 0:>5.0f}%{over}"
        )
    print(
        f"{'total':<15} {per['total']:>9.3f} {budget.total_ms:>7.2f}   "
        f"(fails --check above {budget.limit_ms:.2f})"
    )


def check(runs: list[DatabaseRun], budget: Budget) -> list[str]:
    """Why the run breaks the budget (empty when it holds), one reason per database."""
    reasons = []
    for run in runs:
        value = run.cpu_ms_per_request()
        if run.failure is not None:
            reasons.append(f"{run.label}: not measured ({run.failure})")
        elif value is None:
            reasons.append(f"{run.label}: connector CPU not measured")
        elif value > budget.limit_ms:
            reasons.append(
                f"{run.label}: connector CPU {value:.2f} ms per verification exceeds the "
                f"budget {budget.total_ms:g} ms x {budget.tolerance:g} = {budget.limit_ms:.2f} ms"
            )
    return reasons


def print_headlines(runs: list[DatabaseRun], direct_errors: int) -> None:
    print()
    for run in runs:
        s = run.suffix
        pair = run.headline
        if pair is None:
            why = run.failure or "not measured"
            print(f"verify_e2e_connector_cpu_ms_per_request{s}: n/a ms (target <= 3; {why})")
            continue
        direct, conn = pair
        c = conn.concurrency
        cpu = conn.cpu_per_request("connector")
        target = " (target <= 3)" if c == HEADLINE_LEVEL else f" (at concurrency {c})"
        print(f"verify_e2e_connector_cpu_ms_per_request{s}: {fmt_cpu(cpu)} ms{target}")
        share = conn.throughput / direct.throughput if direct.throughput else math.nan
        target = f" (target >= {RATIO_TARGET:g})" if c == HEADLINE_LEVEL else ""
        print(f"verify_e2e_throughput_ratio_c{c}{s}: {share:.2f} x{target}")
        print(
            f"verify_e2e_c{c}_throughput{s}: {conn.throughput:.0f} req/s "
            f"(no target; direct agent {direct.throughput:.0f} req/s)"
        )
        target = f" (target < {P999_TARGET_MS:g})" if c == HEADLINE_LEVEL else ""
        print(f"verify_e2e_c{c}_p999{s}: {fmt_ms(conn.percentile(99.9))} ms{target}")
        if (single := run.at(1)) is not None:
            added = single[1].percentile(99) - single[0].percentile(99)
            print(
                f"verify_e2e_connector_added_p99_c1{s}: {fmt_ms(added)} ms "
                f"(target < {ADDED_P99_TARGET_MS:g})"
            )
        errors = sum(pair[1].errors.total() for pair in run.results)
        total = sum(pair[1].requests for pair in run.results)
        print(f"verify_e2e_errors{s}: {errors} of {total} requests (target 0)")
    print(f"verify_e2e_direct_errors: {direct_errors} (target 0)")
