"""Every recommender honours one contract, checked on a tiny matrix whose answer is known.

Two taste clusters: customers u0-u5 use items a0-a3, customers v0-v5 use items b0-b3;
each customer has seen three of their cluster's four items. A model that learns
anything personal puts the unseen item of the customer's own cluster first.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix

from features.interactions import LAST_PURCHASE, LAST_TS, PURCHASES, WEIGHT
from features.matrix import Holdout, InteractionMatrix, build_matrix
from features.repurchase import AGE_EDGES, RepeatChance
from models import (
    ALS,
    BPR,
    EASE,
    Filters,
    ItemKNN,
    ModelNotFitted,
    RecentPopularity,
    Recommender,
    Repurchase,
    TifuKNN,
    TwoStage,
    UnknownCustomer,
    UnknownItem,
    base,
)
from models.two_stage import NoHoldout

AS_OF = pd.Timestamp("2026-06-01", tz="UTC")
A = [f"a{i}" for i in range(4)]
B = [f"b{i}" for i in range(4)]


def known_interactions() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """The two clusters' interactions, the catalogue, and each customer's unseen item."""
    rows, unseen = [], {}
    for cluster, items in (("u", A), ("v", B)):
        for n in range(6):
            customer = f"{cluster}{n}"
            hidden = items[n % 4]
            unseen[customer] = hidden
            for item in items:
                if item != hidden:
                    bought = AS_OF - pd.Timedelta(days=3 if item == items[(n + 1) % 4] else 60)
                    rows.append((customer, item, 3.0, bought, 1.0, bought))
    inter = pd.DataFrame(
        rows, columns=["person_id", "item_id", WEIGHT, LAST_TS, PURCHASES, LAST_PURCHASE]
    )
    catalogue = pd.DataFrame(
        {"item_id": [*A, *B, "z0"], "category": ["fruit"] * 4 + ["tools"] * 4 + ["misc"]}
    )
    return inter, catalogue, unseen


def known_answer() -> tuple[InteractionMatrix, dict[str, str]]:
    inter, catalogue, unseen = known_interactions()
    return build_matrix(inter, as_of=AS_OF, catalogue=catalogue), unseen


class ContractMixin:
    """Run against every model: fit, recommend, filters, errors, save/load, fold-in."""

    learns_taste = True
    #: Whether a customer's own fresh history steers their recommendations.
    follows_history = True

    def make(self) -> Recommender:
        raise NotImplementedError

    @pytest.fixture
    def fitted(self) -> tuple[Recommender, dict[str, str]]:
        data, unseen = known_answer()
        return self.make().fit(data), unseen

    def test_fit_returns_self_and_recommends_k_ranked_items(self) -> None:
        data, _ = known_answer()
        model = self.make()
        assert model.fit(data) is model
        recs = model.recommend(["u0", "v1"], k=3)
        assert list(recs.columns) == ["customer_id", "rank", "item_id", "score"]
        for _, group in recs.groupby("customer_id"):
            assert group["rank"].tolist() == [1, 2, 3]
            assert group["score"].is_monotonic_decreasing
            assert group["item_id"].is_unique

    def test_the_unseen_item_of_the_customers_cluster_comes_first(
        self, fitted: tuple[Recommender, dict[str, str]]
    ) -> None:
        if not self.learns_taste:
            pytest.skip("this model does not learn personal taste")
        model, unseen = fitted
        customers = sorted(unseen)
        recs = model.recommend(customers, k=1, filters=Filters(exclude_seen=True))
        assert dict(zip(recs["customer_id"], recs["item_id"], strict=True)) == unseen

    def test_filters_are_honoured(self, fitted: tuple[Recommender, dict[str, str]]) -> None:
        model, _ = fitted
        only = model.recommend(["u0"], k=9, filters=Filters(only_items={"b1", "z0"}))
        assert set(only["item_id"]) <= {"b1", "z0"}
        no_fruit = model.recommend(["u0"], k=9, filters=Filters(exclude_categories={"fruit"}))
        assert not set(no_fruit["item_id"]) & set(A)
        seen = model.recommend(["u0"], k=9, filters=Filters(exclude_seen=True))
        assert not {"a1", "a2", "a3"} & set(seen["item_id"])

    def test_the_repeat_policy_leaves_out_what_is_unlikely_to_be_bought_again(
        self, fitted: tuple[Recommender, dict[str, str]], tmp_path: Path
    ) -> None:
        model, _ = fitted
        policy = Filters(repeat_policy=True)
        # u0 bought a1 three days ago and a2, a3 sixty days ago (a0 is unseen). Without
        # repeat chances (a bare matrix), what was bought in the last 30 days is left out.
        recent = set(model.recommend(["u0"], k=9, filters=policy)["item_id"])
        assert "a1" not in recent and {"a2", "a3"} <= recent
        later = Filters(repeat_policy=True, at=AS_OF + pd.Timedelta(days=40))
        assert "a1" in set(model.recommend(["u0"], k=9, filters=later)["item_id"])
        # With chances: a1 comes back (bought again within weeks), a2 never does.
        chance = np.full((len(model.items_), len(AGE_EDGES)), 0.5, dtype=np.float32)
        chance[model.items_.positions(["a2"])[0]] = 0.01
        learned = copy.copy(model)
        learned.repeat_ = RepeatChance(chance, horizon_days=28)
        shown = set(learned.recommend(["u0"], k=9, filters=policy)["item_id"])
        assert "a2" not in shown and {"a1", "a3"} <= shown
        anything = set(learned.recommend(["u0"], k=9)["item_id"])
        assert {"a1", "a2", "a3"} <= anything
        again = Recommender.load(learned.save(tmp_path / "learned"))
        assert set(again.recommend(["u0"], k=9, filters=policy)["item_id"]) == shown

    def test_unknown_ids_raise_named_errors(
        self, fitted: tuple[Recommender, dict[str, str]]
    ) -> None:
        model, _ = fitted
        with pytest.raises(UnknownCustomer, match="'nobody'"):
            model.recommend(["u0", "nobody"], k=2)
        with pytest.raises(UnknownItem, match="'nothing'"):
            model.recommend(["u0"], k=2, filters=Filters(only_items=["nothing"]))
        with pytest.raises(UnknownItem):
            model.similar_items("nothing")
        with pytest.raises(ModelNotFitted):
            self.make().recommend(["u0"])

    def test_save_and_load_give_identical_recommendations(
        self, fitted: tuple[Recommender, dict[str, str]], tmp_path: Path
    ) -> None:
        model, _ = fitted
        model.save(tmp_path / "model")
        files = sorted(p.name for p in (tmp_path / "model").iterdir())
        assert files == ["params.json", "state.npz"]
        again = Recommender.load(tmp_path / "model")
        assert type(again) is type(model)
        assert again.get_params() == model.get_params()
        customers = ["u0", "u3", "v2"]
        pd.testing.assert_frame_equal(
            again.recommend(customers, k=5), model.recommend(customers, k=5)
        )

    def test_an_erased_customer_is_gone_from_the_model_and_its_saved_state(
        self, fitted: tuple[Recommender, dict[str, str]], tmp_path: Path
    ) -> None:
        model, _ = fitted
        others = ["u1", "u3", "v0", "v4"]
        before = model.recommend(others, k=5)
        scrubbed = model.without(["u0", "v2", "never-seen"])
        with pytest.raises(UnknownCustomer, match="u0"):
            scrubbed.recommend(["u0"])
        assert "u0" in model.users_  # the original is left as it was
        scrubbed.save(tmp_path / "scrubbed")
        with np.load(tmp_path / "scrubbed" / "state.npz", allow_pickle=False) as npz:
            held = {
                str(v) for key in npz.files if npz[key].dtype.kind == "U" for v in npz[key].ravel()
            }
        assert {"u0", "v2"}.isdisjoint(held) and "u1" in held
        again = Recommender.load(tmp_path / "scrubbed")
        assert len(again.users_) == len(model.users_) - 2
        after = again.recommend(others, k=5)
        pd.testing.assert_frame_equal(
            after[["customer_id", "rank"]], before[["customer_id", "rank"]]
        )
        assert (after["item_id"] == before["item_id"]).mean() >= 0.8
        assert model.without(["nobody"]) is model

    def test_fresh_history_steers_recommendations_without_retraining(
        self, fitted: tuple[Recommender, dict[str, str]]
    ) -> None:
        model, _ = fitted
        # A newcomer the model never saw has just bought three b-items.
        fresh = pd.DataFrame(
            {
                "person_id": "newcomer",
                "item_id": ["b0", "b1", "b2"],
                WEIGHT: 20.0,
                LAST_TS: AS_OF - pd.Timedelta(days=1),
                PURCHASES: 1.0,
                LAST_PURCHASE: AS_OF - pd.Timedelta(days=1),
            }
        )
        history = build_matrix(fresh, as_of=AS_OF, items=model.items_.ids)
        recs = model.recommend_history(history, k=3)
        assert recs["customer_id"].unique().tolist() == ["newcomer"]
        if self.learns_taste:
            # Like the b-customers, the newcomer's best new item is b3.
            new = model.recommend_history(history, k=1, filters=Filters(exclude_seen=True))
            assert new["item_id"].tolist() == ["b3"]
        elif self.follows_history:
            assert set(recs["item_id"]) <= set(B)
        with pytest.raises(ValueError, match="model's items"):
            model.recommend_history(build_matrix(fresh, as_of=AS_OF), k=3)
        with pytest.raises(ValueError, match="model's items"):
            model.recommend_or_popular(["newcomer"], 3, history=build_matrix(fresh, as_of=AS_OF))

    def test_similar_items_stay_in_the_cluster(
        self, fitted: tuple[Recommender, dict[str, str]]
    ) -> None:
        model, _ = fitted
        similar = model.similar_items("a0", k=3)
        assert "a0" not in set(similar["item_id"])
        assert set(similar["item_id"]) <= set(A)


class TestPopularity(ContractMixin):
    learns_taste = False
    follows_history = False

    def make(self) -> Recommender:
        return RecentPopularity()


class TestCategoryPopularity(ContractMixin):
    learns_taste = False

    def make(self) -> Recommender:
        return RecentPopularity(scope="category")

    def test_the_customers_category_comes_first(self) -> None:
        data, _ = known_answer()
        recs = self.make().fit(data).recommend(["u0", "v0"], k=4)
        firsts = recs.groupby("customer_id")["item_id"].apply(set)
        assert firsts["u0"] == set(A) and firsts["v0"] == set(B)


class TestStorePopularity(ContractMixin):
    learns_taste = False
    follows_history = False

    def make(self) -> Recommender:
        return RecentPopularity(scope="store")

    def test_what_sells_in_the_customers_store_comes_first(self) -> None:
        data, _ = known_answer()
        # Store S1 sells b-items; customer u0 shops there, u1 has no store.
        popularity = csr_matrix(np.array([[0, 0, 0, 0, 5, 4, 3, 2, 0]], dtype=np.float32))
        user_store = np.full(len(data.users), -1)
        user_store[data.users.tolist().index("u0")] = 0
        local = replace(
            data,
            stores=np.array(["S1"], dtype=object),
            store_popularity=popularity,
            user_store=user_store,
        )
        recs = self.make().fit(local).recommend(["u0", "u1"], k=4)
        firsts = recs.groupby("customer_id")["item_id"].apply(list)
        assert firsts["u0"] == ["b0", "b1", "b2", "b3"]
        assert set(firsts["u1"]) != set(B)  # no store: the global ranking


class TestRepurchase(ContractMixin):
    learns_taste = False

    def make(self) -> Recommender:
        return Repurchase()

    def test_own_items_come_first(self) -> None:
        data, unseen = known_answer()
        recs = self.make().fit(data).recommend(["u0"], k=3)
        assert set(recs["item_id"]) == set(A) - {unseen["u0"]}


class TestItemKNN(ContractMixin):
    def make(self) -> Recommender:
        return ItemKNN(neighbours=10)


class TestTifuKNN(ContractMixin):
    def make(self) -> Recommender:
        return TifuKNN(neighbours=3, alpha=0.5)

    def test_neighbours_are_customers_of_the_same_taste(self) -> None:
        data, _ = known_answer()
        model = TifuKNN(neighbours=3).fit(data)
        near = model.mean_of_[model.users_.positions(["u0"])[0]].indices
        assert {str(u)[0] for u in model.users_.ids[near]} == {"u"} and len(near) == 3


class TestALS(ContractMixin):
    def make(self) -> Recommender:
        # Two taste clusters: two factors are the data's true rank.
        return ALS(factors=2, iterations=15, regularization=0.01)

    def test_fold_in_follows_new_events(self) -> None:
        data, _ = known_answer()
        model = self.make().fit(data)
        newcomer = np.zeros((1, len(model.items_)), dtype=np.float32)
        newcomer[0, model.items_.positions(["b0", "b1"])] = 3.0
        factors = model.fold_in(csr_matrix(newcomer))
        scores = factors @ model.item_factors_.T
        best = model.items_.ids[np.argsort(-scores[0])[:4]]
        assert set(best) == set(B)

    def test_fold_in_follows_the_factors_the_model_holds_now(self) -> None:
        # The solver made on the first fold-in is kept, but never past new factors.
        data, _ = known_answer()
        model = self.make().fit(data)
        newcomer = np.zeros((1, len(model.items_)), dtype=np.float32)
        newcomer[0, model.items_.positions(["a0"])] = 2.0
        first = model.fold_in(csr_matrix(newcomer))
        other = ALS(factors=2, iterations=2, regularization=0.01, random_state=7).fit(data)
        model._restore(other._state())
        again = model.fold_in(csr_matrix(newcomer))
        assert np.allclose(again, other.fold_in(csr_matrix(newcomer)))
        assert not np.allclose(again, first)

    def test_every_fold_in_of_a_model_shares_one_solver(self, tmp_path: Path) -> None:
        """A request's fold-in is a view of the served model; the solver, with its item
        Gram matrix (a millisecond and more at 20,000 items), is made by the first and
        kept by the model for the next, fitted or loaded."""
        data, _ = known_answer()
        inter, _, _ = known_interactions()
        fitted = self.make().fit(data)
        fitted.save(tmp_path / "als")
        for model in (fitted, Recommender.load(tmp_path / "als")):
            assert isinstance(model, ALS)
            solvers = set()
            for who in ("u0", "v1"):
                alone = inter[inter["person_id"] == who]
                history = build_matrix(alone, as_of=AS_OF, items=model.items_.ids)
                view = model.recommend_view(history)
                assert isinstance(view, ALS)
                solvers.add(id(view._solver(1)))
            assert solvers == {id(model._solver(1))}


class TestBPR(ContractMixin):
    def make(self) -> Recommender:
        return BPR(factors=8, iterations=200, learning_rate=0.05, regularization=0.001)


class TestTwoStage(ContractMixin):
    """Trained on a holdout whose purchases are each customer's unseen cluster item."""

    def make(self) -> Recommender:
        return TwoStage(candidates=6, n_estimators=30, min_child_samples=1, num_leaves=4)

    @pytest.fixture
    def fitted(self) -> tuple[Recommender, dict[str, str]]:
        data, unseen = with_known_holdout()
        return self.make().fit(data), unseen

    def test_fit_returns_self_and_recommends_k_ranked_items(self) -> None:
        data, _ = with_known_holdout()
        model = self.make()
        assert model.fit(data) is model
        recs = model.recommend(["u0", "v1"], k=3)
        assert recs.groupby("customer_id")["rank"].apply(list).tolist() == [[1, 2, 3]] * 2

    def test_blocks_of_customers_learn_what_all_at_once_learns(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Candidates are built a block of customers at a time (memory bounded by the
        block, not the store): the ranker learns the same as from one block."""
        data, _ = with_known_holdout()
        whole = self.make().fit(data).recommend(list(data.users), k=5)
        monkeypatch.setattr(base, "SCORE_BLOCK", 2 * len(data.items))  # two customers a block
        assert base.block_rows(len(data.items)) == 2
        blocked = self.make().fit(data).recommend(list(data.users), k=5)
        pd.testing.assert_frame_equal(blocked, whole)

    def test_a_customer_alone_is_ranked_as_among_everyone(
        self, fitted: tuple[Recommender, dict[str, str]]
    ) -> None:
        """The service folds in one customer's history alone (someone with new events);
        evaluation ranks everyone's at once. The same history gets the same candidates,
        features and ranking either way: what the ranker knows of an item (how often its
        buyers buy it again) is the fitted model's, not the few customers' of a view."""
        model, _ = fitted
        assert isinstance(model, TwoStage)
        inter, _, _ = known_interactions()
        inter.loc[inter["item_id"] == "a1", PURCHASES] = 3.0  # a1's buyers buy it again
        items = model.items_.ids
        everyone = model.recommend_view(build_matrix(inter, as_of=AS_OF, items=items))

        def pairs(view: TwoStage, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            feats, cand, _ = view._candidates(
                view.generators_, view.context_, view.cut_, rows, view.repeat_
            )
            return feats, cand

        for who in ("u0", "u1", "v2"):
            alone = inter[inter["person_id"] == who]
            view = model.recommend_view(build_matrix(alone, as_of=AS_OF, items=items))
            row = everyone.users_.positions([who])
            feats, cand = pairs(everyone, row)
            feats_alone, cand_alone = pairs(view, np.array([0]))
            np.testing.assert_array_equal(cand_alone, cand, err_msg=who)
            np.testing.assert_allclose(feats_alone, feats, rtol=1e-6, err_msg=who)
            ranked, scores = everyone.rank(row, len(items))
            ranked_alone, scores_alone = view.rank(np.array([0]), len(items))
            np.testing.assert_array_equal(ranked_alone, ranked, err_msg=who)
            np.testing.assert_allclose(scores_alone, scores, rtol=1e-6, err_msg=who)

    def test_refuses_data_without_a_holdout(self) -> None:
        data, _ = known_answer()
        with pytest.raises(NoHoldout, match="with_holdout"):
            self.make().fit(data)


def with_known_holdout() -> tuple[InteractionMatrix, dict[str, str]]:
    data, unseen = known_answer()
    rows = data.users.tolist()
    cols = data.items.tolist()
    labels = csr_matrix(
        (
            [1.0] * len(unseen),
            ([rows.index(u) for u in unseen], [cols.index(i) for i in unseen.values()]),
        ),
        shape=data.shape,
    )
    return replace(data, holdouts=(Holdout(early=data, labels=labels),)), unseen


class TestEASE(ContractMixin):
    def make(self) -> Recommender:
        return EASE(l2=1.0)
