"""Each name's verdicts from its replies, against what the round's controls said (compiled
where a compiler is at hand: every name of a round that is not skipped goes through here)."""

from __future__ import annotations

from collections.abc import Mapping

from nsdi_tracker.core.model import Observation, Role
from nsdi_tracker.judge import classify
from nsdi_tracker.judge.classify import Health
from nsdi_tracker.rounds.stream import DomainResult
from nsdi_tracker.settings.config import IPNetwork
from nsdi_tracker.settings.watchlist import Entry


class Judging:
    """What every name of a round is judged against; `judge` is the stream's Judge."""

    def __init__(
        self,
        sinkholes: tuple[IPNetwork, ...],
        roles: Mapping[str, Role],
        healths: dict[str, Health],
        connectivity: bool,
        down: frozenset[str],
    ) -> None:
        self.sinkholes = sinkholes
        self.roles = dict(roles)
        self.healths = healths
        self.ref_healths = {n: h for n, h in healths.items() if roles[n] is Role.REFERENCE}
        self.connectivity = connectivity
        self.down = down
        self.unasked: dict[str, tuple[Observation, ...]] = {n: () for n in down}

    def judge(
        self,
        entry: Entry,
        observations: dict[str, tuple[Observation, ...]],
        index: int = -1,
        digest: int = 0,
    ) -> DomainResult:
        """One name's verdict on each resolver and its headline (a resolver that is down
        this round was not asked: its replies are empty)."""
        if self.down:
            observations = {**observations, **self.unasked}
        roles = self.roles
        views = {n: classify.combine(obs) for n, obs in observations.items()}
        ref = classify.reference_view(
            {n: v for n, v in views.items() if roles[n] is Role.REFERENCE}, self.ref_healths
        )
        judgements = {
            n: classify.judge(
                views[n], ref, self.healths[n], connectivity=self.connectivity,
                sinkholes=self.sinkholes,
            )
            for n in views
            if roles[n] is not Role.REFERENCE
        }  # fmt: skip
        national = classify.headline(
            [v.verdict for n, v in judgements.items() if roles[n] is Role.NATIONAL]
        )
        return DomainResult(
            entry, national, ref, judgements, observations, self.down, index, digest
        )
