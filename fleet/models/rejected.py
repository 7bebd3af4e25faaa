"""Messages the ingest refused, kept with the reason so operators can act on them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleet.models.base import BIG_ID, Base, UTCDateTime, utcnow


class RejectedMessage(Base):
    __tablename__ = "rejected_messages"
    # A redelivered bad message is looked up by topic among the last week's rejects
    # (fleet.ingest.store.unrecorded_rejects), inside the ingest transaction.
    __table_args__ = (Index("ix_rejected_messages_topic_received_at", "topic", "received_at"),)

    # A misbehaving fleet can send thousands of bad messages a second: a 64-bit key.
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    topic: Mapped[str] = mapped_column(String(512))
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    # First bytes of the payload, escaped; enough to diagnose without storing floods.
    payload_excerpt: Mapped[str] = mapped_column(Text)
    payload_size: Mapped[int] = mapped_column(Integer)
