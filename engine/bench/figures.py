"""The bench's unit of report: one :class:`Figure` (measured against its target) and the table.

Every measurement of ``taskscope bench``, engine and GUI alike, returns Figures; ``--json``
writes :meth:`Figure.as_dict` of each, so a new figure is one more Figure with a new key (issue
17's ``observer.*``, ``size.*`` and ``startup.*`` keys go the same way).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    """One measured figure and its target. ``ok`` is None for figures without a target."""

    key: str
    label: str
    measured: float | None
    unit: str
    target: float | None = None
    #: "max": measured must be <= target; "min": measured must be >= target; "range":
    #: ``low`` <= measured <= target.
    sense: str = "max"
    note: str = ""
    #: Structured detail for ``--json`` (p50/max beside a p99, per-case figures, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    #: The lower bound of a "range" target.
    low: float | None = None

    @property
    def ok(self) -> bool | None:
        if self.target is None or self.measured is None:
            return None
        if self.sense == "range":
            return (self.low is None or self.measured >= self.low) and self.measured <= self.target
        return self.measured <= self.target if self.sense == "max" else self.measured >= self.target

    @property
    def target_text(self) -> str:
        """The target as the table shows it: "≤ 20 µs", "≥ 200,000 ev/s", "0.95-1.05 x"."""
        if self.target is None:
            return "(reported)"
        if self.sense == "range":
            return f"{self.low:,g}-{self.target:,g} {self.unit}"
        return f"{'≤' if self.sense == 'max' else '≥'} {self.target:,g} {self.unit}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def rounded(x: float | None) -> float | None:
    """``x`` to one decimal, None staying None (a figure that could not be measured)."""
    return None if x is None else round(x, 1)


def format_table(figs: list[Figure]) -> str:
    """The printed report: one row per figure, measured against target, met or not, note."""
    rows = [("figure", "measured", "target", "met", "note")]
    for f in figs:
        meas = "n/a" if f.measured is None else f"{f.measured:,g} {f.unit}"
        tgt = f.target_text
        met = {True: "yes", False: "NO", None: "-"}[f.ok]
        rows.append((f.label, meas, tgt, met, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for i, r in enumerate(rows):
        out.append("  ".join(r[j].ljust(widths[j]) for j in range(4)) + "  " + r[4])
        if i == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(out)
