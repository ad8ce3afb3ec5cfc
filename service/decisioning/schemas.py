"""Request and response bodies of the next-best-offer and trigger routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import experiments_field, served_id_field


class Offer(BaseModel):
    offer_id: str
    name: str
    kind: str = Field(description="product, promotion, service or retention.")
    item_id: str | None = None
    category: str | None = None
    value: float
    description: str | None = None


class NextBestOffer(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C000042",
                    "channel": "store",
                    "decision_id": "5f0c7b2e9d1a4c6f8e3b2a1d0c9b8a7f",
                    "offer": {
                        "offer_id": "O-CAT-1",
                        "name": "2 for 1 in dairy",
                        "kind": "promotion",
                        "item_id": None,
                        "category": "dairy",
                        "value": 8.0,
                        "description": None,
                    },
                    "probability": 0.12,
                    "expected_value": 0.96,
                    "reason": "14 of their top 100 suggestions are in dairy",
                    "decided_at": "2026-11-23T09:15:00Z",
                    "decided_in": "email",
                    "valid_until": "2026-11-30T09:15:00Z",
                    "reused": True,
                    "probability_source": "prior",
                    "served_id": "5f0c7b2e9d1a4c6f8e3b2a1d0c9b8a7f",
                    "experiments": {},
                    "held_out": False,
                }
            ]
        }
    )
    customer_id: str
    channel: str
    decision_id: str | None = Field(description="The same in every channel while it stands.")
    offer: Offer | None = Field(description="None when no offer is open to the customer.")
    probability: float | None = None
    expected_value: float | None = None
    reason: str
    decided_at: datetime | None = None
    decided_in: str | None = Field(default=None, description="The channel that asked first.")
    valid_until: datetime | None = None
    reused: bool = Field(default=False, description="True when an earlier decision stands.")
    probability_source: str | None = Field(
        default=None,
        description='Where `probability` came from: "prior" (the models and assumed take '
        "rates) or the learned take rate used.",
    )
    served_id: str | None = served_id_field("offer", "offer_accepted, the purchase")
    experiments: dict[str, str] = experiments_field()
    held_out: bool = Field(
        default=False,
        description="True when the customer is held out of offers (a control group): "
        "nothing is offered, and the offer they would have got is recorded.",
    )


class CartItem(BaseModel):
    item_id: str
    name: str
    quantity: int
    in_stock: int | None = Field(description="Units online (None: stock not tracked).")


class Suggested(BaseModel):
    item_id: str
    name: str
    reason: str


class Trigger(BaseModel):
    trigger_id: str = Field(description="One per cart and channel; acknowledge it by this id.")
    cart_id: str
    customer_id: str
    channel: str
    abandoned_at: datetime = Field(description="The cart's last change.")
    due_at: datetime
    items: list[CartItem] = Field(description="What is still in the cart and in stock.")
    recommendations: list[Suggested] = Field(description="Complementary items in stock.")
    churn_band: str | None
    incentive: Offer | None = Field(description="Depends on the churn band; None when low.")
    served_id: str | None = served_id_field("message", "the purchase; the trigger id")
    experiments: dict[str, str] = experiments_field()


class Triggers(BaseModel):
    triggers: list[Trigger]
    next_cursor: str | None = Field(description="Pass it back for the next page of this pull.")
    quiet_until: datetime | None = Field(
        None,
        description="Set when triggers were held back for customers in their quiet hours "
        "(in their own time zone): when the earliest of those ends.",
    )


class Ack(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"outcome": "sent"}]})
    outcome: Literal["sent", "failed"] = Field(
        default="sent",
        description="sent: delivered. failed: not delivered; the contact is not counted and "
        "the trigger is handed out again.",
    )


class Acked(BaseModel):
    trigger_id: str
    status: str
    acked_at: datetime
