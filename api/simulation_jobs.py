"""Starting a simulation or a backtest of a stored rule-set version (a draft or any other) as a
job, for the faces that start one: POST …/simulate and …/backtest, and the console. Everything
that can be checked before the job is stored is checked here, so a refused start stores nothing;
the job itself (api.jobs) runs api.simulation.simulate_job or api.backtest.backtest_job in a
process of its own.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from api.backtest import check_period
from api.jobs import launch_job
from api.settings import Settings
from api.simulation import DEFAULT_SEED, active_version, check_sample, stored_candidate


def start_simulation(
    settings: Settings,
    kind: str,
    version: int,
    as_of: date,
    sample: int | None,
    seed: int | None,
    created_by: str,
) -> dict[str, Any]:
    """Start the "simulate" job of version `version` of `kind` (a draft or any stored version)
    as of `as_of`, for POST …/simulate and the console alike; return the job. Checked first,
    nothing stored when it fails: UnknownVersion, NoActiveVersion, InvalidVersion,
    BadParameters; api.jobs.JobError when the job's process cannot start."""
    seed = DEFAULT_SEED if seed is None else seed
    check_sample(sample, seed)
    stored_candidate(kind, version)
    active_version(kind)
    params = {
        "kind": kind,
        "version": version,
        "as_of": as_of.isoformat(),
        "sample": sample,
        "seed": seed,
    }
    return launch_job(settings, "simulate", params, created_by)


def start_backtest(
    settings: Settings, kind: str, version: int, first: date, last: date, created_by: str
) -> dict[str, Any]:
    """Start the "backtest" job of version `version` of `kind` over the decisions made from
    `first` to `last`, for POST …/backtest and the console alike; return the job. Checked
    first: BadParameters, UnknownVersion, InvalidVersion; api.jobs.JobError when the job's
    process cannot start."""
    check_period(first, last)
    stored_candidate(kind, version)
    params = {"kind": kind, "version": version, "from": first.isoformat(), "to": last.isoformat()}
    return launch_job(settings, "backtest", params, created_by)
