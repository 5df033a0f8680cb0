"""Alert rules on closed windows, with hysteresis so a rule does not flap.

A rule watches one figure of each closed window (of a column, for drift's
figures: `column`). It breaches when the figure
is above (or below) its threshold: a number (`absolute`), a factor of the
reference's figure (`relative`), or a number of the reference windows'
standard deviations from their mean (`std`, NannyML's way). It fires after
`for_windows` breaching windows in a row, and resolves after
`resolve_windows` windows in a row back within `resolve_at` (by default the
threshold itself). A window without the figure (an empty window's MAE)
leaves a rule as it is. Firing and resolving are transitions, the events of
the alerts stream.

Pure: windows in, transitions out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Protocol

from nnmon.processors.core.drift import DRIFT_FIGURES, PER_COLUMN, PSI_DRIFT
from nnmon.processors.core.quality import FIGURES


class Measured(Protocol):
    """A window's figures, by measure (see `Rule.measure`)."""

    def value(self, measure: str) -> float: ...


class Baseline(Protocol):
    """What thresholds are set from: the reference's figures, by measure, in
    all and as the mean and spread over its windows (`core.reference.Reference`,
    `core.drift.DriftReference`)."""

    @property
    def source(self) -> str: ...

    @property
    def window_mean(self) -> Mapping[str, float]: ...

    @property
    def window_std(self) -> Mapping[str, float]: ...

    def value(self, measure: str) -> float: ...


class RulesError(ValueError):
    """A rule that cannot be used, in words that name the problem."""


class Kind(str, Enum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"
    STD = "std"


@dataclass(frozen=True)
class Rule:
    name: str
    figure: str
    threshold: float
    above: bool = True  # breaches above the threshold; False: below it
    kind: Kind = Kind.ABSOLUTE
    for_windows: int = 2
    resolve_windows: int = 2
    resolve_at: float | None = None  # in the threshold's terms; None: the threshold
    column: str | None = None  # whose figure, for drift's per-column figures (EVERY_FEATURE: each)

    @property
    def measure(self) -> str:
        """What the rule reads of a window's figures: the figure, of its column."""
        return self.figure if self.column is None else f"{self.figure}[{self.column}]"

    @property
    def key(self) -> str:
        """The rule's name, with the column it watches: one state each."""
        return self.name if self.column is None else f"{self.name}[{self.column}]"

    def limits(self, reference: Baseline) -> tuple[float, float]:
        """The figure's values at which this rule fires and resolves."""
        return self._limit(self.threshold, reference), self._limit(
            self.threshold if self.resolve_at is None else self.resolve_at, reference)

    def _limit(self, threshold: float, reference: Baseline) -> float:
        if self.kind is Kind.ABSOLUTE:
            return threshold
        if self.kind is Kind.RELATIVE:
            return threshold * reference.value(self.measure)
        spread = threshold * reference.window_std.get(self.measure, math.nan)
        mean = reference.window_mean.get(self.measure, math.nan)
        return mean + spread if self.above else mean - spread

    def check(self, reference: Baseline) -> None:
        """Raises RulesError if this rule has no threshold with `reference`."""
        fire, resolve = self.limits(reference)
        if not (math.isfinite(fire) and math.isfinite(resolve)):
            raise RulesError(f"rule {self.key!r}: the reference ({reference.source}) has no {self.measure} "
                             f"to set a {self.kind.value} threshold from")
        if self.kind is Kind.RELATIVE and not reference.value(self.measure) > 0:
            # A factor of a negative figure would turn "above" into "below".
            raise RulesError(f"rule {self.key!r}: a relative threshold needs a positive reference "
                             f"{self.measure} (the reference's is {reference.value(self.measure):.6g}); "
                             "give an absolute or std one")
        if resolve != fire and (resolve > fire) == self.above:
            raise RulesError(f"rule {self.key!r}: resolve_at must lie on the good side of the threshold")

    @property
    def on_drift(self) -> bool:
        """Whether the rule watches drift's figures (run by `drift`), not quality's (`metric`)."""
        return self.figure in DRIFT_FIGURES


# A drift rule on a column's figure without a column watches every feature,
# each on its own (its state, its alerts).
EVERY_FEATURE = "*"


def default_rules() -> list[Rule]:
    """Quality: MAE or RMSE 20% above the reference's for 2 windows in a
    row; an empty window (the data stopped for a whole window, then came
    back). Drift: the PSI of a feature, of the predictions or of the truths
    above 0.2 for 2 windows; more than half of the features drifted in a
    window."""
    return [
        Rule("mae_above_reference", "mae", 1.2, kind=Kind.RELATIVE),
        Rule("rmse_above_reference", "rmse", 1.2, kind=Kind.RELATIVE),
        Rule("no_rows", "rows", 1, above=False, for_windows=1, resolve_windows=1),
        Rule("feature_drift", "psi", PSI_DRIFT, column=EVERY_FEATURE),
        Rule("prediction_drift", "psi", PSI_DRIFT, column="y_pred"),
        Rule("target_drift", "psi", PSI_DRIFT, column="y_true"),
        Rule("most_features_drifted", "drifted_share", 0.5, for_windows=1, resolve_windows=1),
    ]


# At most this many rules: an alert's publishing id is its window's end
# times this plus its place among the window's transitions.
MAX_RULES = 100
_KEYS = {"name", "figure", "above", "below", "kind", "for_windows", "resolve_windows", "resolve_at", "column"}


def parse_rules(document: dict[str, Any]) -> list[Rule]:
    """The rules of a rules file's TOML document: a `[[rule]]` table per rule."""
    unknown = set(document) - {"rule"}
    if unknown:
        raise RulesError(f"unknown top-level key {sorted(unknown)[0]!r} (rules are [[rule]] tables)")
    tables = document.get("rule", [])
    if not isinstance(tables, list) or not tables:
        raise RulesError("no [[rule]] table")
    if len(tables) > MAX_RULES:
        raise RulesError(f"{len(tables)} rules: at most {MAX_RULES}")
    rules = [_rule(table, index) for index, table in enumerate(tables, 1)]
    names = [rule.name for rule in rules]
    for name in names:
        if names.count(name) > 1:
            raise RulesError(f"two rules are named {name!r}")
    return rules


def _rule(table: Any, index: int) -> Rule:
    if not isinstance(table, dict):
        raise RulesError(f"rule {index} is not a table")
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise RulesError(f"rule {index} has no name")
    where = f"rule {name!r}"
    unknown = set(table) - _KEYS
    if unknown:
        raise RulesError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_KEYS))})")
    figure = table.get("figure")
    if figure not in FIGURES and figure not in DRIFT_FIGURES:
        raise RulesError(f"{where}: unknown figure {figure!r} (known: {', '.join(FIGURES)}; "
                         f"of drift: {', '.join(DRIFT_FIGURES)})")
    column = table.get("column")
    if figure in PER_COLUMN:
        if column is None:
            column = EVERY_FEATURE
        elif not isinstance(column, str) or not column or column == EVERY_FEATURE:
            raise RulesError(f"{where}: column must be a column's name, not {column!r}")
    elif column is not None:
        raise RulesError(f"{where}: {figure} is not a column's figure: it takes no column")
    if ("above" in table) == ("below" in table):
        raise RulesError(f"{where}: give one of above = or below =")
    above = "above" in table
    threshold = _number(table["above" if above else "below"], where, "the threshold")
    try:
        kind = Kind(table.get("kind", "absolute"))
    except ValueError:
        raise RulesError(f"{where}: unknown kind {table.get('kind')!r} (absolute, relative or std)") from None
    for_windows = _count(table.get("for_windows", 2), where, "for_windows")
    resolve_windows = _count(table.get("resolve_windows", for_windows), where, "resolve_windows")
    resolve_at = table.get("resolve_at")
    return Rule(name, figure, threshold, above, kind, for_windows, resolve_windows,
                None if resolve_at is None else _number(resolve_at, where, "resolve_at"), column)


def _number(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RulesError(f"{where}: {what} must be a number, not {value!r}")
    return float(value)


def _count(value: Any, where: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RulesError(f"{where}: {what} must be a whole number of windows, at least 1, not {value!r}")
    return value


@dataclass(frozen=True)
class Transition:
    """A rule that fired or resolved at a window."""

    rule: str
    state: str  # "firing" or "resolved"
    window_start_ms: int
    window_end_ms: int
    figure: str
    value: float
    threshold: float
    reference: float
    column: str | None = None  # whose figure (drift's per-column figures)


@dataclass
class _RuleState:
    firing: bool = False
    run: int = 0  # windows in a row that breach (not firing) or that are back within (firing)


@dataclass
class Alerts:
    """The rules' states over the closed windows, in window order."""

    rules: list[Rule]
    reference: Baseline
    states: dict[str, _RuleState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rule in self.rules:
            rule.check(self.reference)
            self.states.setdefault(rule.key, _RuleState())

    def evaluate(self, start_ms: int, end_ms: int, figures: Measured) -> list[Transition]:
        """The transitions at this closed window (the next in time)."""
        transitions = []
        for rule in self.rules:
            value = figures.value(rule.measure)
            if math.isnan(value):
                continue
            state = self.states[rule.key]
            fire, resolve = rule.limits(self.reference)
            if not state.firing:
                breached = value > fire if rule.above else value < fire
                state.run = state.run + 1 if breached else 0
                if state.run >= rule.for_windows:
                    state.firing, state.run = True, 0
                    transitions.append(self._transition(rule, "firing", start_ms, end_ms, value, fire))
            else:
                within = value <= resolve if rule.above else value >= resolve
                state.run = state.run + 1 if within else 0
                if state.run >= rule.resolve_windows:
                    state.firing, state.run = False, 0
                    transitions.append(self._transition(rule, "resolved", start_ms, end_ms, value, resolve))
        return transitions

    def _transition(self, rule: Rule, state: str, start_ms: int, end_ms: int, value: float,
                    threshold: float) -> Transition:
        return Transition(rule.name, state, start_ms, end_ms, rule.figure, value, threshold,
                          self.reference.value(rule.measure), rule.column)

    def firing(self) -> list[str]:
        return [name for name, state in self.states.items() if state.firing]

    def to_state(self) -> dict[str, Any]:
        return {name: [state.firing, state.run] for name, state in self.states.items()}

    def restore(self, state: dict[str, Any]) -> None:
        """Take the rules' states from a checkpoint (rules no longer
        configured are left out; new ones start calm)."""
        for name, (firing, run) in state.items():
            if name in self.states:
                self.states[name] = _RuleState(bool(firing), int(run))


def drift_rules_for(rules: list[Rule], columns: tuple[str, ...], features: tuple[str, ...]) -> list[Rule]:
    """The drift rules that watch `columns` (of which `features` are the
    features): a rule for every feature once per feature among them, the
    share of features drifted where features are."""
    watching = []
    for rule in rules:
        if not rule.on_drift:
            continue
        if rule.column is None:  # the share of features drifted
            if any(name in features for name in columns):
                watching.append(rule)
        elif rule.column == EVERY_FEATURE:
            watching.extend(replace(rule, column=name) for name in columns if name in features)
        elif rule.column in columns:
            watching.append(rule)
    return watching


def unwatched(rules: list[Rule], columns: tuple[str, ...]) -> list[Rule]:
    """The drift rules naming a column that is not among `columns`."""
    return [rule for rule in rules
            if rule.on_drift and rule.column not in (None, EVERY_FEATURE) and rule.column not in columns]
