"""Per-source counters for the audit, and rate-limited logging of rejected rows."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from physlora.data.readers.base import Rejection

logger = logging.getLogger(__name__)

LOGGED_PER_FILE = 5
"""Rejected rows logged one by one per file; the rest are logged as one count."""
EXAMPLES_PER_REASON = 3
"""Rejection messages kept in the audit for each reason."""
FILTERED_EXAMPLES = 5
"""Questions dropped by the physics filter kept in the audit for each source."""


@dataclass
class SourceStats:
    """Counts of one source through the pipeline. They reconcile as
    read = rejected + filtered + topic_excluded + duplicates + subsampled + leakage_removed + kept.
    """

    label: str
    type: str
    origin: str
    """Local path or hub dataset id that was read."""
    files: list[str] = field(default_factory=list)
    read: int = 0
    rejected: Counter = field(default_factory=Counter)
    rejected_examples: dict[str, list[str]] = field(default_factory=dict)
    filtered: int = 0
    filtered_examples: list[str] = field(default_factory=list)
    topic_excluded: int = 0
    """Physics records whose topic is not in data.topics."""
    duplicates: int = 0
    subsampled: int = 0
    leakage_removed: int = 0
    kept: int = 0
    _logged: Counter = field(default_factory=Counter, repr=False)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def add_rejection(self, rejection: Rejection) -> None:
        self.rejected[rejection.reason] += 1
        message = f"{self.label}: {rejection.message()}"
        examples = self.rejected_examples.setdefault(rejection.reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(message)
        file = rejection.location.file
        self._logged[file] += 1
        if self._logged[file] <= LOGGED_PER_FILE:
            logger.warning("%s: rejected row %s", self.label, rejection.message())

    def add_filtered(self, question: str) -> None:
        self.filtered += 1
        if len(self.filtered_examples) < FILTERED_EXAMPLES:
            self.filtered_examples.append(question)

    def log_rejection_totals(self) -> None:
        """Log, per file, how many rejected rows were not logged one by one."""
        for file, count in sorted(self._logged.items()):
            if count > LOGGED_PER_FILE:
                hidden = count - LOGGED_PER_FILE
                logger.warning("%s: %d more rejected rows in %s (reasons in audit.json)", self.label, hidden, file)

    def rejection_summary(self) -> str:
        """Return e.g. "3 rejected: 2 missing field 'question', 1 invalid JSON"."""
        parts = [f"{count} {reason}" for reason, count in self.rejected.most_common()]
        return f"{self.rejected_total} rejected" + (f": {', '.join(parts)}" if parts else "")

    def unaccounted(self) -> int:
        """Rows read but in no category; 0 when the counts reconcile."""
        accounted = self.rejected_total + self.filtered + self.topic_excluded + self.duplicates + self.subsampled
        accounted += self.leakage_removed
        return self.read - accounted - self.kept

    def to_dict(self) -> dict:
        return {
            "type": self.type,
            "origin": self.origin,
            "files": self.files,
            "read": self.read,
            "rejected": self.rejected_total,
            "rejected_by_reason": dict(self.rejected.most_common()),
            "rejected_examples": self.rejected_examples,
            "filtered_non_physics": self.filtered,
            "filtered_examples": self.filtered_examples,
            "excluded_by_topic": self.topic_excluded,
            "duplicates_removed": self.duplicates,
            "subsampled_away": self.subsampled,
            "leakage_removed": self.leakage_removed,
            "kept": self.kept,
        }
