"""Tables of the nightly run (SPEC §8): runs, their batches, per-customer results, actions, lock.

A run is identified by its as_of date (a forced re-run of a date gets the next `attempt`). Its
customers are split into batches recorded here (`planned_at` says when that was complete);
workers claim a batch under a lease (owner and expiry), and a batch's decisions, results and
actions are committed with the batch itself, so a run that stops anywhere resumes without
evaluating a customer twice (RunResult is unique per run, customer and kind as a last guard).
Actions are the worklist the ERP reads.
"""

from __future__ import annotations

import peewee as pw

from storage.models import ID_LENGTH, BaseModel, JSONField, UtcDateTimeField

RUN_STATES = ("running", "finished", "failed")
BATCH_STATES = ("pending", "leased", "done")
ACTION_STATES = ("pending", "acknowledged", "failed", "void")


class Run(BaseModel):
    run_id = pw.CharField(max_length=ID_LENGTH, primary_key=True)
    as_of = pw.DateField()
    attempt = pw.IntegerField(default=1)
    state = pw.CharField(max_length=16, default="running")
    requested_by = pw.CharField(max_length=200, default="")
    # The rule-set versions the run uses from start to end: {kind: {version, sha256}}.
    rulesets = JSONField(default=dict)
    batch_size = pw.IntegerField(default=500)
    customers_total = pw.IntegerField(default=0)
    report = JSONField(default=dict)
    error = pw.TextField(default="")
    started_at = UtcDateTimeField()
    # When every customer had been put in a batch; None while they are being listed (a run
    # is listed, then executed; one stopped while listing is listed again from the start).
    planned_at = UtcDateTimeField(null=True)
    finished_at = UtcDateTimeField(null=True)
    heartbeat_at = UtcDateTimeField(null=True)

    class Meta:
        indexes = ((("as_of", "attempt"), True),)


class RunBatch(BaseModel):
    """A slice of a run's customers, in id order."""

    run = pw.ForeignKeyField(
        Run, column_name="run_id", backref="batches", on_delete="CASCADE", index=False
    )
    number = pw.IntegerField()
    customer_ids = JSONField()
    state = pw.CharField(max_length=16, default="pending")
    lease_owner = pw.CharField(max_length=200, null=True)
    lease_expires_at = UtcDateTimeField(null=True)
    attempts = pw.IntegerField(default=0)
    customers_evaluated = pw.IntegerField(default=0)
    errors = JSONField(default=list)  # [{customer_id, error}]
    figures = JSONField(default=dict)  # portfolio sums of the batch's customers
    seconds = pw.FloatField(default=0)
    finished_at = UtcDateTimeField(null=True)

    class Meta:
        indexes = (
            (("run", "number"), True),
            (("run", "state"), False),
        )


class RunResult(BaseModel):
    """The headline outcome of one decision of a run: for changes since the previous run."""

    run = pw.ForeignKeyField(Run, column_name="run_id", on_delete="CASCADE", index=False)
    customer_id = pw.CharField(max_length=ID_LENGTH)
    kind = pw.CharField(max_length=64)
    outcome = pw.CharField(max_length=200)
    decision_id = pw.CharField(max_length=ID_LENGTH)

    class Meta:
        indexes = ((("run", "customer_id", "kind"), True),)


class Action(BaseModel):
    """Something the ERP should do for a customer: send a reminder, offer a plan, hand off."""

    run = pw.ForeignKeyField(
        Run, column_name="run_id", backref="actions", on_delete="CASCADE", index=False
    )
    customer_id = pw.CharField(max_length=ID_LENGTH)
    type = pw.CharField(max_length=32)
    payload = JSONField(default=dict)
    state = pw.CharField(max_length=16, default="pending")
    state_reason = pw.TextField(default="")
    decision_id = pw.CharField(max_length=ID_LENGTH, null=True)
    created_at = UtcDateTimeField()
    updated_at = UtcDateTimeField(null=True)

    class Meta:
        indexes = (
            (("run", "customer_id", "type"), True),
            (("run", "type", "state"), False),
            (("customer_id", "state"), False),
        )


class RunLock(BaseModel):
    """The one-run-at-a-time lock on SQLite (PostgreSQL uses an advisory lock)."""

    name = pw.CharField(max_length=64, primary_key=True)
    owner = pw.CharField(max_length=200)
    expires_at = UtcDateTimeField()


RUN_MODELS = (Run, RunBatch, RunResult, Action, RunLock)
