"""Summarise the per-job wall times that Snakemake's benchmark files record."""

import csv
from pathlib import Path


def stage_times(benchmark_dir: Path) -> list[tuple[str, str, float]]:
    """Return (stage, job, seconds) for every benchmark TSV below ``benchmark_dir``."""
    rows = []
    for path in sorted(benchmark_dir.rglob("*.tsv")):
        with path.open() as handle:
            records = list(csv.DictReader(handle, delimiter="\t"))
        if records:
            stage = path.relative_to(benchmark_dir).parts[0]
            job = str(path.relative_to(benchmark_dir / stage).with_suffix(""))
            rows.append((stage, job, float(records[-1]["s"])))
    return rows


def format_summary(rows: list[tuple[str, str, float]]) -> str:
    """Format per-stage totals and the grand total as a small text table."""
    totals: dict[str, tuple[int, float]] = {}
    for stage, _, seconds in rows:
        count, total = totals.get(stage, (0, 0.0))
        totals[stage] = (count + 1, total + seconds)
    lines = [f"{'stage':<16}{'jobs':>6}{'seconds':>10}"]
    for stage, (count, total) in totals.items():
        lines.append(f"{stage:<16}{count:>6}{total:>10.1f}")
    lines.append(f"{'total':<16}{sum(c for c, _ in totals.values()):>6}{sum(t for _, t in totals.values()):>10.1f}")
    return "\n".join(lines)
