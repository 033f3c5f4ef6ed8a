"""Decisions, append-only, in one hash chain (SPEC §5).

- shape.py: what a decision is made of, declared once (FIELDS), with its record formats;
- append.py: appending, one decision or a batch, under the chain lock;
- queries.py: reading (one by id, filtered pages, exports, counts);
- chain.py: the chain's head and its verification (rehash.py: a row's hash recomputed);
- retention.py: pruning the oldest decisions behind a checkpoint (record_checkpoint).

The names callers use are importable from here.
"""

from storage.decisions.append import (
    CHAIN_LOCK,
    PreparedDecision,
    append_decision,
    append_decisions,
    append_prepared,
    as_stored,
    prepare_decisions,
    tag_value,
)
from storage.decisions.chain import ChainProblem, chain_head, scan_chain, verify_chain
from storage.decisions.queries import (
    DecisionFilter,
    DecisionPage,
    count_decisions,
    get_decision,
    get_decision_by_seq,
    iter_decisions,
    query_decisions,
    to_record,
)
from storage.decisions.retention import Checkpoint, latest_checkpoint, record_checkpoint
from storage.decisions.shape import FORMAT, VIAS

__all__ = [
    "CHAIN_LOCK",
    "FORMAT",
    "VIAS",
    "ChainProblem",
    "Checkpoint",
    "DecisionFilter",
    "DecisionPage",
    "PreparedDecision",
    "append_decision",
    "append_decisions",
    "append_prepared",
    "as_stored",
    "chain_head",
    "count_decisions",
    "get_decision",
    "get_decision_by_seq",
    "iter_decisions",
    "latest_checkpoint",
    "prepare_decisions",
    "query_decisions",
    "record_checkpoint",
    "scan_chain",
    "tag_value",
    "to_record",
    "verify_chain",
]
