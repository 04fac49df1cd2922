"""Tables of the gateway schema (declared without a schema; the engine maps them into `gateway`)."""

from __future__ import annotations

from kubeserve_common.db.base import new_metadata
from sqlalchemy import Column, Float, Integer, String, Table

metadata = new_metadata()

# One token bucket per limited key ("key:<api key id>", "deployment:<id>", "ip:<address>"...),
# shared by the gateway replicas. `updated` is the database's clock (epoch seconds), so the
# replicas' clocks never matter; `granted` is what the last statement handed out.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated", Float, nullable=False, index=True),
    Column("granted", Integer, nullable=False, default=0),
)
