"""Experiments and holdouts as a marketer runs them: stable arms in every channel and
process, a control group nobody contacts (and whose would-be contacts are recorded), and
champion against challenger side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from scipy.stats import binomtest, chisquare
from sqlalchemy import select

from service.app import create_app
from service.decisioning.exports import export_offers
from service.experiments.assignment import arm_of, assign, in_control_group
from service.experiments.design import Experiment
from service.experiments.report import build
from service.serving import ModelHolder
from service.settings import Settings
from service.shelf import Shelf
from service.storage.engine import open_engine
from service.storage.tables import exposures, triggers
from tests.conftest import (
    ADMIN_KEY,
    TABLET_KEY,
    ServedStore,
    add_customer,
    copy_of,
    fit_recommender,
    publish_recommender,
)

ADMIN = {"X-API-Key": ADMIN_KEY}
TABLET = {"X-API-Key": TABLET_KEY}
ARMS = [{"name": "a", "weight": 70}, {"name": "b", "weight": 20}, {"name": "c", "weight": 10}]
SPLIT = Experiment.model_validate({"name": "split", "arms": ARMS})


def test_arms_take_their_declared_shares_of_100000_ids() -> None:
    ids = [f"C{i:07d}" for i in range(100_000)]
    arms = [arm_of(SPLIT, i).name for i in ids]
    counts = [arms.count(a) for a in ("a", "b", "c")]
    assert chisquare(counts, f_exp=[70_000, 20_000, 10_000]).pvalue > 0.001
    settings = Settings(holdout_share=0.05)
    held = sum(in_control_group(i, settings) for i in ids)
    assert binomtest(held, len(ids), 0.05).pvalue > 0.001
    # The control group is drawn apart from the arms: each arm holds its 5%.
    in_c = [i for i, a in zip(ids, arms, strict=True) if a == "c"]
    held_in_c = sum(in_control_group(i, settings) for i in in_c)
    assert binomtest(held_in_c, counts[2], 0.05).pvalue > 0.001


def test_assignment_is_the_same_in_another_process() -> None:
    ids = [f"C{i:07d}" for i in range(0, 3000, 7)]
    here = {i: arm_of(SPLIT, i).name for i in ids}
    code = (
        "import json, sys\n"
        "from service.experiments.assignment import arm_of\n"
        "from service.experiments.design import Experiment\n"
        "e = Experiment.model_validate(json.loads(sys.argv[1]))\n"
        "print(json.dumps({i: arm_of(e, i).name for i in json.loads(sys.argv[2])}))\n"
    )
    there = subprocess.run(
        [sys.executable, "-c", code, SPLIT.model_dump_json(), json.dumps(ids)],
        capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"},
    )  # fmt: skip
    assert json.loads(there.stdout) == here


def test_experiments_that_fight_over_one_thing_are_refused() -> None:
    challenger = {"name": "x", "weight": 1, "recommender_alias": "challenger"}
    one = {"name": "one", "arms": [{"name": "champion", "weight": 1}, challenger]}
    two = {"name": "two", "arms": [challenger]}
    with pytest.raises(ValidationError, match="both change recommender"):
        Settings(experiments=[one, two])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="arm names repeat"):
        Settings(experiments=[{"name": "e", "arms": [challenger, challenger]}])  # type: ignore[list-item]
    later = {**two, "start": "2030-01-01T00:00:00Z"}
    one_ends = {**one, "end": "2029-01-01T00:00:00Z"}
    assert len(Settings(experiments=[one_ends, later]).experiments) == 2  # type: ignore[list-item]


def test_experiments_are_read_from_a_toml_file(tmp_path: Any) -> None:
    path = tmp_path / "experiments.toml"
    path.write_text(
        '[[experiments]]\nname = "carts"\nend = 2031-01-01T00:00:00Z\n'
        '[[experiments.arms]]\nname = "control"\nweight = 10\ntriggers = false\n'
        '[[experiments.arms]]\nname = "send"\nweight = 90\n'
    )
    settings = Settings(experiments_file=path)
    (found,) = settings.experiments
    assert [a.name for a in found.arms] == ["control", "send"] and not found.arms[0].triggers


# -- in a store ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(served_store: ServedStore, tmp_path_factory: pytest.TempPathFactory) -> ServedStore:
    noon = served_store.clock + timedelta(hours=12)
    copy = copy_of(served_store, tmp_path_factory.mktemp("experiments"), clock=noon)
    held = copy.settings.model_copy(update={"holdout_share": 0.5})
    return ServedStore(held, copy.data, copy.recommender_version, copy.churn_version, copy.clock)


@pytest.fixture(scope="module")
def client(store: ServedStore) -> Iterator[TestClient]:
    with TestClient(create_app(store.settings)) as test_client:
        yield test_client


def held_and_not(settings: Settings, prefix: str, n: int = 1) -> tuple[list[str], list[str]]:
    """New customers (all consents but sms) in the control group and out of it."""
    held: list[str] = []
    free: list[str] = []
    i = 0
    while len(held) < n or len(free) < n:
        cid = f"{prefix}{i:03d}"
        i += 1
        side = held if in_control_group(cid, settings) else free
        if len(side) < n:
            side.append(add_customer(settings, cid))
    return held, free


def rows(settings: Settings, table: Any, **where: str) -> list[dict[str, Any]]:
    engine = open_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            query = select(table)
            for name, value in where.items():
                query = query.where(table.c[name] == value)
            return [dict(r) for r in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def test_the_control_group_gets_no_offer_in_any_channel_and_is_recorded_once(
    client: TestClient, store: ServedStore
) -> None:
    s = store.settings
    known = [f"C{i:07d}" for i in range(1, 200)]
    held = [p for p in known if in_control_group(p, s)][:3]
    free = [p for p in known if not in_control_group(p, s)][:3]
    for cid in held:
        for channel, headers in (("web", ADMIN), ("email", ADMIN), ("store", TABLET)):
            body = client.get(f"/v1/customers/{cid}/next-best-offer",
                              params={"channel": channel}, headers=headers).json()  # fmt: skip
            assert body["offer"] is None, body
            no_consent = channel == "email" and "does not consent" in body["reason"]
            assert no_consent or (body["held_out"] and "held out" in body["reason"]), body
    web = {"channel": "web"}
    offered = [
        client.get(f"/v1/customers/{cid}/next-best-offer", params=web, headers=ADMIN).json()
        for cid in free
    ]
    assert any(o["offer"] is not None for o in offered)
    for o in offered:
        if o["offer"] is not None:
            assert o["served_id"] == o["decision_id"] and not o["held_out"]
            (shown,) = rows(s, exposures, served_id=o["served_id"])
            assert shown["held_by"] is None and shown["offer_id"] == o["offer"]["offer_id"]
    for cid in held:  # asked in three channels: what they would have got, recorded once
        records = rows(s, exposures, person_id=cid)
        would = [r for r in records if r["kind"] == "offer"]
        assert len(would) <= 1 and all(r["held_by"] == "global holdout" for r in would)


def test_the_control_group_gets_no_abandoned_cart_message(
    client: TestClient, store: ServedStore
) -> None:
    s = store.settings
    held, free = held_and_not(s, "HOLD-CART-", 2)
    at = (store.clock - timedelta(hours=30)).isoformat()
    events = [{"event_id": f"{cid}-cart", "ts": at, "customer_id": cid, "channel": "web",
               "type": "add_to_cart", "item_id": "I000005"} for cid in held + free]  # fmt: skip
    assert not client.post("/v1/events", json={"events": events}, headers=ADMIN).json()["rejected"]
    for channel in ("email", "push"):
        body = client.get("/v1/triggers/abandoned-carts", params={"channel": channel},
                          headers=ADMIN).json()  # fmt: skip
        got = {t["customer_id"]: t for t in body["triggers"]}
        assert not set(held) & set(got)
        mine = [got[cid] for cid in free if cid in got]
        assert all(t["served_id"] == t["trigger_id"] for t in mine)
        if channel == "email":  # (then today's cap is spent: no push for them)
            assert len(mine) == len(free)
    for cid in held:
        recorded = [r for r in rows(s, exposures, person_id=cid) if r["kind"] == "trigger"]
        assert {r["channel"] for r in recorded} == {"email", "push"}
        assert all(r["held_by"] == "global holdout" for r in recorded)
        assert {r["status"] for r in rows(s, triggers, person_id=cid)} == {"held"}
    again = client.get("/v1/triggers/abandoned-carts", params={"channel": "email"},
                       headers=ADMIN).json()  # fmt: skip
    assert not set(held) & {t["customer_id"] for t in again["triggers"]}
    assert len([r for r in rows(s, exposures, person_id=held[0]) if r["kind"] == "trigger"]) == 2


def test_the_email_batch_leaves_the_control_group_out(store: ServedStore) -> None:
    s = store.settings
    engine = open_engine(s.database_url)
    holder = ModelHolder(s)
    holder.reload()
    try:
        batch = export_offers(engine, holder.current, Shelf(engine, 30), s, "email", s.now())
    finally:
        engine.dispose()
    assert len(batch) > 0
    assert not any(in_control_group(cid, s) for cid in batch["customer_id"])
    assert (batch["served_id"] == batch["decision_id"]).all()
    recorded = rows(s, exposures, channel="email")
    held = {r["person_id"] for r in recorded if r["held_by"] is not None}
    assert held and all(in_control_group(p, s) for p in held)


# -- champion against challenger -------------------------------------------------------------
def test_champion_and_challenger_answer_side_by_side(
    served_store: ServedStore, tmp_path: Any
) -> None:
    copy = copy_of(served_store, tmp_path, clock=served_store.clock)
    challenger = publish_recommender(
        copy.settings, fit_recommender(copy.settings, neighbours=5), alias="challenger"
    )
    experiment = {"name": "recs", "arms": [
        {"name": "champion", "weight": 50},
        {"name": "challenger", "weight": 50, "recommender_alias": "challenger"}]}  # fmt: skip
    settings = copy.settings.model_copy(
        update={"experiments": [Experiment.model_validate(experiment)]}
    )
    ids = [f"C{i:07d}" for i in range(1, 41)]
    with TestClient(create_app(settings)) as client:
        answers = {
            cid: client.get(f"/v1/customers/{cid}/recommendations", headers=ADMIN).json()
            for cid in ids
        }
        app_answer = client.get(f"/v1/customers/{ids[0]}/recommendations",
                                params={"channel": "app"}, headers=ADMIN).json()  # fmt: skip
        # A third of them buy within the hour (anywhere: a store till).
        later = (settings.now() + timedelta(hours=1)).isoformat()
        till = {"channel": "store", "store_id": "S001", "type": "purchase", "item_id": "I000003",
                "quantity": 1, "price": 10.0}  # fmt: skip
        buys = [{"event_id": f"recs-buy-{cid}", "ts": later, "customer_id": cid, **till}
                for cid in ids[::3]]  # fmt: skip
        assert not client.post("/v1/events", json={"events": buys},
                               headers=ADMIN).json()["rejected"]  # fmt: skip
    versions = set()
    for cid, body in answers.items():
        arm = assign(cid, settings, settings.now()).labels["recs"]
        assert body["experiments"] == {"recs": arm}
        expected = f"{challenger}@challenger" if arm == "challenger" else copy.recommender_version
        assert body["model_version"] == expected
        versions.add(body["model_version"])
    assert len(versions) == 2
    # The same arm in another channel; a list per channel and day, recorded once.
    assert app_answer["experiments"] == answers[ids[0]]["experiments"]
    assert app_answer["served_id"] != answers[ids[0]]["served_id"]
    lists = {answers[ids[0]]["served_id"], app_answer["served_id"]}
    recorded = [r for r in rows(settings, exposures, person_id=ids[0]) if r["served_id"] in lists]
    assert {r["channel"] for r in recorded} == {"web", "app"}
    assert all(json.loads(r["arms"]) == answers[ids[0]]["experiments"] for r in recorded)
    # The report compares the challenger with the champion (nobody is held out of lists).
    engine = open_engine(settings.database_url)
    try:
        at = settings.now()
        made = build(engine, settings, at - timedelta(hours=1), at + timedelta(hours=1), "recs")
    finally:
        engine.dispose()
    groups = {g.name: g for g in made.groups}
    assert set(groups) == {"champion", "challenger"}
    assert sum(g.customers for g in groups.values()) == len(ids)
    bought = set(ids[::3])
    for name, g in groups.items():
        in_arm = {cid for cid in ids if answers[cid]["experiments"]["recs"] == name}
        assert g.customers == len(in_arm) and g.converted == len(in_arm & bought)
    (versus,) = made.comparisons
    assert (versus.group, versus.control) == ("challenger", "champion")


def test_a_campaign_holdout_arm_and_an_arm_with_its_own_cart_window(
    served_store: ServedStore, tmp_path: Any
) -> None:
    """`cart-email`: a tenth get no cart message (held, recorded), the others get one after
    an hour instead of a day, without an incentive."""
    noon = served_store.clock + timedelta(hours=12)
    copy = copy_of(served_store, tmp_path, clock=noon)
    experiment = Experiment.model_validate({"name": "cart-email", "arms": [
        {"name": "control", "weight": 10, "triggers": False},
        {"name": "fast", "weight": 90, "cart_windows_minutes": {"email": 60},
         "incentive": False}]})  # fmt: skip
    settings = copy.settings.model_copy(update={"experiments": [experiment]})
    control: list[str] = []
    fast: list[str] = []
    i = 0
    while len(control) < 2 or len(fast) < 2:
        cid, i = f"CAMPAIGN-{i:03d}", i + 1
        side = control if arm_of(experiment, cid).name == "control" else fast
        if len(side) < 2:
            side.append(add_customer(settings, cid))
    # The fast arm's carts are 3 hours old (due only with their hour), the control's 30.
    hours = {**{cid: 30 for cid in control}, **{cid: 3 for cid in fast}}
    events = [{"event_id": f"{cid}-cart", "ts": (noon - timedelta(hours=h)).isoformat(),
               "customer_id": cid, "channel": "web", "type": "add_to_cart",
               "item_id": "I000005"} for cid, h in hours.items()]  # fmt: skip
    with TestClient(create_app(settings)) as client:
        assert not client.post("/v1/events", json={"events": events},
                               headers=ADMIN).json()["rejected"]  # fmt: skip
        body = client.get("/v1/triggers/abandoned-carts", params={"channel": "email"},
                          headers=ADMIN).json()  # fmt: skip
    got = {t["customer_id"]: t for t in body["triggers"]}
    assert set(fast) <= set(got) and not set(control) & set(got)
    assert all(got[cid]["incentive"] is None for cid in fast)
    assert all(got[cid]["experiments"] == {"cart-email": "fast"} for cid in fast)
    for cid in control:
        (held,) = [r for r in rows(settings, exposures, person_id=cid) if r["kind"] == "trigger"]
        assert held["held_by"] == "cart-email:control"
        assert json.loads(held["arms"]) == {"cart-email": "control"}
