"""Champion/challenger arms (SPEC §5, issue 17): which version of a kind decides for a customer
while an experiment runs.

The arm is a pure function of the experiment's id and the customer's id: the first 8 bytes of
SHA-256("credo-experiment:<experiment id>:<customer id>"), as a number, modulo 10,000, is the
customer's bucket; buckets below share × 100 are the challenger's. So a customer stays in one
arm in every process, worker and run for the whole experiment, and a new experiment (a new id)
draws anew. Decisions from given facts (no stored customer) always use the champion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from api.usecases import ActiveRuleSet

BUCKETS = 10_000
MIN_SHARE, MAX_SHARE = 1, 50  # percent of the customers on the challenger


@dataclass(frozen=True)
class Challenger:
    """A running experiment as deciders need it: its id, the challenger's share in percent,
    and the challenger version, parsed."""

    experiment: int
    share: int
    version: ActiveRuleSet


def bucket_of(experiment_id: int, customer_id: str) -> int:
    """The customer's bucket in the experiment, 0 to 9,999 (see the module's docstring)."""
    text = f"credo-experiment:{experiment_id}:{customer_id}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def arm_of(experiment_id: int, customer_id: str, share: int) -> str:
    """ "challenger" for `share` percent of the customers, "champion" for the rest."""
    return "challenger" if bucket_of(experiment_id, customer_id) < share * 100 else "champion"


def arm_versions(
    active: Mapping[str, ActiveRuleSet],
    challengers: Mapping[str, Challenger],
    customer_id: str,
) -> tuple[dict[str, ActiveRuleSet], dict[str, dict[str, Any]]]:
    """The versions that decide for a stored customer (the challenger in place of the active
    version where the customer is in its arm), and the arm of each kind under an experiment,
    {name, experiment}, as decisions record it."""
    versions = dict(active)
    arms: dict[str, dict[str, Any]] = {}
    for kind, challenger in challengers.items():
        if kind not in active:
            continue
        name = arm_of(challenger.experiment, customer_id, challenger.share)
        arms[kind] = {"name": name, "experiment": challenger.experiment}
        if name == "challenger":
            versions[kind] = challenger.version
    return versions, arms


def parse_challengers(
    pinned: Mapping[str, Mapping[str, Any]], active: Mapping[str, ActiveRuleSet]
) -> dict[str, Challenger]:
    """The challengers of running experiments, parsed beside the `active` versions (a
    challenger reads the outcome of the active versions of the kinds it is after).
    `pinned` holds, by kind, {experiment, share, version, sha256} of each challenger; a
    stored version missing or changed raises LookupError, one that no longer parses
    RuleFileError."""
    from api.usecases import parse_versions
    from engine.errors import RuleFileError
    from storage.rulesets import get_version

    ready = {kind: a.ruleset for kind, a in active.items()}
    found: dict[str, Challenger] = {}
    for kind, pin in sorted(pinned.items()):
        stored = get_version(kind, pin["version"])
        if stored is None or stored["sha256"] != pin["sha256"]:
            raise LookupError(f"challenger {kind} version {pin['version']} is missing or changed")
        others = {k: r for k, r in ready.items() if k != kind}
        parsed, problems = parse_versions([stored], others)
        if problems:
            raise RuleFileError(problems)
        found[kind] = Challenger(pin["experiment"], pin["share"], parsed[kind])
    return found


def running_challengers() -> dict[str, dict[str, Any]]:
    """{kind: {experiment, share, version, sha256}} of every running experiment, as a run pins
    them and parse_challengers reads them."""
    from storage.experiments import running_experiments
    from storage.models import RuleSetVersion

    pins = {}
    for experiment in running_experiments():  # usually none: one query
        sha256 = (
            RuleSetVersion.select(RuleSetVersion.sha256)
            .where(
                (RuleSetVersion.kind == experiment["kind"])
                & (RuleSetVersion.version == experiment["challenger"])
            )
            .scalar()
        )
        if sha256 is not None:
            pins[experiment["kind"]] = {
                "experiment": experiment["id"],
                "share": experiment["share"],
                "version": experiment["challenger"],
                "sha256": sha256,
            }
    return pins
