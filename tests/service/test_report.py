"""The report finds what is there and nothing else: a campaign on the synthetic world
where the customers' response to the offers is known, and A/A experiments over many
draws; attribution on hand-built sequences."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from scipy.stats import binomtest
from typer.testing import CliRunner

from features import columns as c
from features.sources.frame import SourceFrame
from features.synthetic.response import Responses, base_chance, respond
from service.app import create_app
from service.decisioning.exports import export_offers
from service.experiments import attribution, kpis, plots, report
from service.experiments.assignment import arm_of
from service.experiments.design import Experiment
from service.serving import ModelHolder
from service.settings import ApiKey, Settings, get_settings
from service.shelf import Shelf
from service.storage import churn_days, exposures
from service.storage.codec import EPOCH
from service.storage.engine import open_engine
from service.storage.reader import load_table, recent_events
from tests.conftest import ADMIN_KEY, READ_KEY, TABLET_KEY, ServedStore, copy_of
from training.cli import app as cli
from training.ingest import ingest

ADMIN = {"X-API-Key": ADMIN_KEY}
READER = {"X-API-Key": READ_KEY}

TAKE = 0.3
DAYS = 7.0


def simulated(frame: pd.DataFrame) -> SourceFrame:
    where = pd.Series([f"simulated event {i}" for i in range(len(frame))], index=frame.index)
    return SourceFrame("events", "simulated", frame, where)


def purchases_before(settings: Settings, until: datetime) -> pd.DataFrame:
    engine = open_engine(settings.database_url)
    try:
        events = recent_events(engine, since=EPOCH, until=until, types=["purchase"])
    finally:
        engine.dispose()
    return attribution.purchases_of(events)


@pytest.fixture(scope="module")
def campaign(
    served_store: ServedStore, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, Responses, report.Report]:
    """Tonight's e-mail offers with half the customers held out; the customers answer
    (those given an offer take it with chance TAKE), and the report of the night."""
    noon = served_store.clock + timedelta(hours=12)
    copy = copy_of(served_store, tmp_path_factory.mktemp("report"), clock=noon)
    settings = copy.settings.model_copy(update={"holdout_share": 0.5, "attribution_days": DAYS})
    engine = open_engine(settings.database_url)
    holder = ModelHolder(settings)
    holder.reload()
    try:
        export_offers(engine, holder.current, Shelf(engine, 30), settings, "email", noon)
        with engine.connect() as conn:  # tonight's e-mail: given or held back
            shown = exposures.read(conn, noon, noon + timedelta(seconds=1))
        shown = shown[shown[c.KIND] == exposures.OFFER]
        shown = shown.assign(group=np.where(shown["held_by"].notna(), "holdout", "treated"))
        base = base_chance(purchases_before(settings, noon), pd.Index(shown[c.PERSON_ID].unique()),
                           pd.Timestamp(noon), DAYS)  # fmt: skip
        answers = respond(shown, base, {"treated": TAKE}, load_table(engine, "catalogue"),
                          load_table(engine, "offers"), DAYS, seed=3)  # fmt: skip
        ingest(engine, [simulated(answers.events)])
        night = report.build(engine, settings, noon - timedelta(hours=1),
                             noon + timedelta(hours=1), None)  # fmt: skip
    finally:
        engine.dispose()
    return settings, answers, night


def test_the_report_finds_the_lift_the_customers_gave(
    campaign: tuple[Settings, Responses, report.Report],
) -> None:
    _, answers, night = campaign
    groups = {g.name: g for g in night.groups}
    assert set(groups) == {"treated", "holdout"} and groups["holdout"].held_out
    truth = answers.truth
    assert groups["treated"].customers == int(truth["treated"].sum())
    assert groups["holdout"].customers == int((truth["group"] == "holdout").sum())
    (lift,) = night.comparisons
    treated = truth[truth["group"] == "treated"]
    true_lift = TAKE * float((1 - treated["p_base"]).mean())
    assert lift.conversion.low <= true_lift <= lift.conversion.high
    assert lift.conversion.low > 0 and lift.conversion.p_value < 0.05  # found, not guessed
    assert lift.revenue_per_customer.estimate > 0
    # The offers' own purchases carried their served_id back: attributed directly.
    direct = [a for a in night.attributed if a["rule"] == "direct"]
    assert sum(a["purchases"] for a in direct) == int(treated["took"].sum())


def test_the_report_has_the_omnichannel_kpis(
    campaign: tuple[Settings, Responses, report.Report],
) -> None:
    _, _, night = campaign
    data = night.as_dict()
    assert data["groups"][0]["conversion"]["low"] <= data["groups"][0]["conversion"]["estimate"]
    clv = night.lifetime_value
    assert clv.customers > 100 and clv.predicted_12m_mean > 0
    assert len(clv.predicted_12m) > 100 and (clv.predicted_12m >= 0).all()
    churn = night.churn
    assert churn.active_before > 0 and 0 <= churn.rate <= 1


def test_the_kpis_read_from_the_state_are_those_of_the_event_log(
    campaign: tuple[Settings, Responses, report.Report],
) -> None:
    """The report reads the whole history from the purchase day rows; the event log's
    purchases give the same churn label and the same value to date."""
    settings, _, night = campaign
    from_events = purchases_before(settings, night.until)
    assert kpis.churn_rate(from_events, night.until) == night.churn
    events_value = kpis.lifetime_value(from_events, night.since, night.until)
    assert events_value.customers == night.lifetime_value.customers
    assert events_value.historic_mean == pytest.approx(night.lifetime_value.historic_mean)
    engine = open_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            days = churn_days.purchase_days(conn, night.until)
    finally:
        engine.dispose()
    assert len(days) < len(from_events)  # a row or two per purchase day, not per event


def test_an_aa_experiment_finds_no_difference_at_the_stated_rate(
    campaign: tuple[Settings, Responses, report.Report],
) -> None:
    """Two arms treated alike, re-drawn 200 times (new experiment names, new responses):
    a difference is declared in about 5% of them, not more."""
    settings, answers, _ = campaign
    people = answers.truth[c.PERSON_ID].astype(str).tolist()
    at = settings.now()
    purchases = purchases_before(settings, at)
    base = base_chance(purchases, pd.Index(people), pd.Timestamp(at), DAYS)
    found = 0
    draws = 200
    arms = [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]
    for seed in range(draws):
        aa = Experiment.model_validate({"name": f"aa-{seed}", "arms": arms})
        shown = pd.DataFrame({
            "served_id": [f"{p}-{seed}" for p in people], c.PERSON_ID: people,
            c.CUSTOMER_ID: people, c.KIND: "offer", c.CHANNEL: "email", c.OFFER_ID: None,
            "held_by": None, "served_at": pd.Timestamp(at),
            "group": [arm_of(aa, p).name for p in people],
        })  # fmt: skip
        rng = np.random.default_rng(seed)
        bought = rng.random(len(people)) < base.to_numpy()
        purchased = pd.DataFrame({
            c.EVENT_ID: [f"p{i}" for i in range(int(bought.sum()))],
            c.PERSON_ID: np.asarray(people)[bought],
            c.TS: pd.Timestamp(at) + pd.to_timedelta(rng.uniform(0, DAYS, bought.sum()), "D"),
            "revenue": rng.gamma(2.0, 20.0, bought.sum()),
        })  # fmt: skip
        _, firsts = report.outcomes(shown, purchased, pd.DataFrame(), DAYS)
        if report.compare(firsts, "b", "a").conversion.p_value < 0.05:
            found += 1
    assert binomtest(found, draws, 0.05, alternative="greater").pvalue > 0.01, found


def test_attribution_follows_one_person_across_channels() -> None:
    t = pd.Timestamp("2026-10-02T08:00:00Z")
    shown = pd.DataFrame({
        "served_id": ["mail-1", "app-1", "held-1"], c.PERSON_ID: ["P1", "P1", "P2"],
        c.KIND: ["offer", "recommendations", "offer"], c.CHANNEL: ["email", "app", "email"],
        "held_by": [None, None, "global holdout"],
        "served_at": [t, t + pd.Timedelta(days=1), t],
    })  # fmt: skip
    bought = pd.DataFrame({
        c.EVENT_ID: ["store-buy", "late-buy", "direct-buy", "held-buy"],
        c.PERSON_ID: ["P1", "P1", "P1", "P2"],
        c.TS: [t + pd.Timedelta(hours=6), t + pd.Timedelta(days=20),
               t + pd.Timedelta(days=2), t + pd.Timedelta(hours=1)],
        c.CHANNEL: ["store", "web", "web", "store"],
        c.SERVED_ID: [None, None, "mail-1", None], "revenue": [30.0, 5.0, 12.0, 9.0],
    })  # fmt: skip
    last = attribution.last_touch(shown, bought, days=7).set_index(c.EVENT_ID)
    # The e-mail in the morning gets the store purchase that afternoon (another channel).
    assert last.loc["store-buy", "served_id"] == "mail-1"
    assert last.loc["store-buy", "rule"] == "last touch"
    # A purchase naming the e-mail is the e-mail's, though the app list came later.
    assert last.loc["direct-buy", "served_id"] == "mail-1"
    assert last.loc["direct-buy", "rule"] == "direct"
    # Too late for any answer, and nothing is attributed to an answer held back.
    assert "late-buy" not in last.index and "held-buy" not in last.index
    anyway = attribution.any_touch(shown, bought, days=7)
    assert sorted(anyway.loc[anyway[c.EVENT_ID] == "direct-buy", "served_id"]) == [
        "app-1",
        "mail-1",
    ]
    table = attribution.summary(pd.concat([last.reset_index(), anyway]))
    store_mail = table[(table["rule"] == "last touch") & (table["exposure_channel"] == "email")]
    assert store_mail["cross_channel"].sum() == 1 and store_mail["revenue"].sum() == 30.0


def test_the_report_over_http_is_for_admin_keys_only(
    campaign: tuple[Settings, Responses, report.Report],
) -> None:
    settings, _, night = campaign
    period = {"since": night.since.isoformat(), "until": night.until.isoformat()}
    with TestClient(create_app(settings)) as client:
        body = client.get("/v1/reports", params=period, headers=ADMIN).json()
        assert body == night.as_dict()  # what the command line writes, the same figures
        assert client.get("/v1/reports", params=period, headers=READER).status_code == 403
        unknown = client.get("/v1/reports", params={**period, "experiment": "nope"},
                             headers=ADMIN)  # fmt: skip
        assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
        backwards = {"since": period["until"], "until": period["since"]}
        assert client.get("/v1/reports", params=backwards, headers=ADMIN).status_code == 422
        for name in ("conversion", "uplift", "lifetime_value"):
            png = client.get(f"/v1/reports/plots/{name}.png", params=period, headers=ADMIN)
            assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        assert client.get("/v1/reports/plots/pie.png", params=period,
                          headers=ADMIN).status_code == 404  # fmt: skip


def test_omni_report_writes_the_report_and_logs_it_to_mlflow(
    campaign: tuple[Settings, Responses, report.Report],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, _, night = campaign
    monkeypatch.setenv("OMNI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("OMNI_MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("OMNI_MLFLOW_ARTIFACT_ROOT", str(settings.mlflow_artifact_root))
    monkeypatch.setenv("OMNI_HOLDOUT_SHARE", "0.5")
    get_settings.cache_clear()
    try:
        when = "%Y-%m-%dT%H:%M:%S"
        result = CliRunner().invoke(cli, [
            "report", "--since", night.since.strftime(when), "--until", night.until.strftime(when),
            "--out", str(tmp_path)])  # fmt: skip
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "Against the control" in result.output and "holdout" in result.output
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["groups"] == night.as_dict()["groups"]
    text = (tmp_path / "report.md").read_text()
    assert "## Against the control" in text and "![uplift](uplift.png)" in text
    assert all((tmp_path / f"{n}.png").read_bytes().startswith(b"\x89PNG") for n in plots.PLOTS)
    runs = mlflow.search_runs(experiment_names=["omni-reports"])
    assert len(runs) >= 1
    logged = runs.iloc[0]
    lift = night.comparisons[0].conversion.estimate
    assert logged["metrics.treated_vs_holdout/conversion_estimate"] == pytest.approx(lift)


def test_the_tablet_shows_the_report_to_a_manager_key(
    campaign: tuple[Settings, Responses, report.Report],
) -> None:
    settings, _, night = campaign
    manager = ApiKey(name="manager", scopes=["recommend", "profile:read", "events:write",
                                             "admin"], store_id="S001")  # fmt: skip
    keys = {**settings.api_keys, "manager-key": manager}
    for key, sees in (("manager-key", True), (TABLET_KEY, False)):
        with TestClient(create_app(settings.model_copy(update={"api_keys": keys}))) as client:
            page = client.get("/tablet")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf
            client.post("/tablet/sign-in", data={"key": key, "csrf": csrf.group(1)})
            assert ("/tablet/report" in client.get("/tablet").text) is sees
            days = {"since": f"{night.since:%Y-%m-%d}", "until": f"{night.until:%Y-%m-%d}"}
            shown = client.get("/tablet/report", params=days)
            if not sees:
                assert shown.status_code == 403 and "admin" in shown.text
                continue
            assert shown.status_code == 200
            assert "treated vs holdout" in shown.text and "Omnichannel KPIs" in shown.text
            assert shown.text.count("data:image/png;base64,") == len(plots.PLOTS)
