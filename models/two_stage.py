"""Omni's final recommender: candidates from several generators, reranked by LightGBM.

Stage one: repurchase, item-kNN, ALS and category popularity each propose their top
`candidates` items. Stage two: a LightGBM lambdarank model orders the union on features
of the pair -- each generator's score and rank, the item's popularity and price against
the customer's usual basket, the customer's affinity to its category and brand, how
recently they bought it, how much they shop. The ranker is trained on the holdout the
training data carries (an earlier cut and what was bought after it), then the generators
are refitted on the whole history. Items outside the candidates follow, by popularity.
"""

from __future__ import annotations

import copy

import lightgbm as lgb
import numpy as np
from scipy.sparse import csr_matrix

from features.matrix import Holdout, InteractionMatrix
from features.repurchase import RepeatChance
from models import boosters
from models.base import Recommender, block_rows, csr_from, csr_parts
from models.factors import ALS
from models.neighbours import ItemKNN
from models.pair_features import Cut, ItemContext
from models.popularity import RecentPopularity
from models.repurchase import Repurchase

#: Up to this many customers, their rows are read dense for the pair features.
_DENSE_ROWS = 64

FEATURES_PER_GENERATOR = ("score", "rank")
PAIR_FEATURES = (
    "popularity",
    "item_trend",
    "item_store_share",
    "item_repeat_rate",
    "own_weight",
    "own_purchases",
    "purchase_age_days",
    "seen_age_days",
    "category_share",
    "brand_share",
    "price_ratio",
    "user_items",
    "user_weight",
    "user_repeat_share",
    "user_store_share",
    "repeat_chance",
)


class NoHoldout(ValueError):
    """The two-stage model needs training data built with a holdout window."""


class TwoStage(Recommender):
    """Generators propose, a LightGBM lambdarank ranker orders."""

    name = "two-stage"

    def __init__(
        self,
        candidates: int = 50,
        n_estimators: int = 100,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        max_train_customers: int = 20_000,
        random_state: int = 0,
    ) -> None:
        self.candidates = candidates
        self.min_child_samples = min_child_samples
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_train_customers = max_train_customers
        self.random_state = random_state

    def _generators(self) -> dict[str, Recommender]:
        return {
            "repurchase": Repurchase(),
            "itemknn": ItemKNN(),
            "als": ALS(random_state=self.random_state),
            "category": RecentPopularity(scope="category"),
        }

    # -- fitting -------------------------------------------------------------------------
    def _fit(self, data: InteractionMatrix) -> None:
        if not data.holdouts:
            raise NoHoldout("fit the two-stage model on features.matrix.with_holdout(...) data")
        rng = np.random.default_rng(self.random_state)
        parts = [self._training_pairs(h, rng) for h in data.holdouts]
        feats = np.concatenate([p[0] for p in parts])
        label = np.concatenate([p[1] for p in parts])
        groups = np.concatenate([p[2] for p in parts])
        ranker = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            random_state=self.random_state,
            n_jobs=2,
            verbose=-1,
        )
        ranker.fit(feats, label.astype(int), group=groups)
        self.ranker_ = ranker.booster_
        self.generators_ = {name: g.fit(data) for name, g in self._generators().items()}
        self.context_ = ItemContext.of(data)
        self.cut_ = Cut.of(data)

    def _refresh(self, history: InteractionMatrix) -> None:
        self.generators_ = {name: g._view(history) for name, g in self.generators_.items()}
        # How often an item's buyers buy it again is the item side of the fitted model,
        # as its popularity is: a view of one customer would count only their repeats.
        self.cut_ = Cut.of(history, item_repeat=self.cut_.item_repeat)

    def _keep_users(self, keep: np.ndarray) -> None:
        generators = {}
        for name, g in self.generators_.items():
            g = copy.copy(g)
            g._drop_rows(keep)
            generators[name] = g
        self.generators_ = generators
        cut = self.cut_
        self.cut_ = Cut(
            self.history_, self.purchase_age_, cut.counts[keep], cut.seen[keep],
            cut.store_share[keep],
        )  # fmt: skip

    def _training_pairs(
        self, holdout: Holdout, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of one holdout's cut, labelled by what was bought after it.

        Customers whose candidates hold no purchase are left out: lambdarank learns
        nothing from them.
        """
        early = holdout.early
        generators = {name: g.fit(early) for name, g in self._generators().items()}
        labelled = np.flatnonzero(np.asarray(holdout.labels.sum(axis=1)).ravel() > 0)
        if len(labelled) > self.max_train_customers:
            labelled = np.sort(rng.choice(labelled, self.max_train_customers, replace=False))
        context, cut = ItemContext.of(early), Cut.of(early)
        # In blocks of customers: the generators' dense scores never cover everyone at once.
        step = block_rows(early.shape[1])
        blocks = [
            self._candidates(generators, context, cut, labelled[at : at + step], early.repeat)
            for at in range(0, len(labelled), step)
        ]
        if not blocks:
            blocks = [self._candidates(generators, context, cut, labelled, early.repeat)]
        feats = np.concatenate([b[0] for b in blocks])
        cand = np.concatenate([b[1] for b in blocks])
        groups = np.concatenate([b[2] for b in blocks])
        owner = np.repeat(np.arange(len(labelled)), groups)
        label = np.asarray(holdout.labels[labelled][owner, cand]).ravel() > 0
        start = np.concatenate([[0], np.cumsum(groups)[:-1]]).astype(np.int64)
        useful = (np.add.reduceat(label.astype(int), start) > 0) & (groups > 0)
        keep = np.repeat(useful, groups)
        return feats[keep], label[keep], groups[useful]

    # -- scoring -------------------------------------------------------------------------
    def _scores(self, rows: np.ndarray) -> np.ndarray:
        feats, cand, groups = self._candidates(
            self.generators_, self.context_, self.cut_, rows, self.repeat_
        )
        # A ranker saved before the repeat-chance feature knows the columns before it.
        feats = feats[:, : self.ranker_.num_feature()]
        ranked = boosters.predict(self.ranker_, feats)
        # Everything else after the candidates, in popularity order.
        pop = self.context_.popularity
        scores = np.tile(pop / max(pop.max(), 1e-12) - 2.0, (len(rows), 1))
        offset = float(np.min(ranked)) - 1.0 if len(ranked) else -1.0
        scores += offset
        owner = np.repeat(np.arange(len(rows)), groups)
        scores[owner, cand] = ranked
        return scores.astype(np.float32)

    def _candidates(
        self,
        generators: dict[str, Recommender],
        ctx: ItemContext,
        cut: Cut,
        rows: np.ndarray,
        repeat: RepeatChance | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features (n_pairs x n_features), candidate item per pair, pairs per customer.

        `repeat` gives, for an item the customer bought, the chance they buy it again
        within the horizon at its age in this cut (NaN when not bought or not known)."""
        n_items = cut.weights.shape[1]
        scores = {name: g._scores(rows) for name, g in generators.items()}
        top = min(self.candidates, n_items)
        ranks = {}
        chosen = np.zeros((len(rows), n_items), dtype=bool)
        for name, s in scores.items():
            best = np.argpartition(-s, top - 1, axis=1)[:, :top]
            order = np.argsort(-np.take_along_axis(s, best, axis=1), axis=1)
            best = np.take_along_axis(best, order, axis=1)
            r = np.full(s.shape, top + 1, dtype=np.float32)
            np.put_along_axis(r, best, np.arange(1, top + 1, dtype=np.float32)[None, :], axis=1)
            ranks[name] = r
            np.put_along_axis(chosen, best, True, axis=1)
        owner, cand = np.nonzero(chosen)
        groups = np.bincount(owner, minlength=len(rows))
        # A fold-in's cut is its customer alone: their rows are the cut's, no copy.
        every = len(rows) == cut.weights.shape[0] and np.array_equal(rows, np.arange(len(rows)))

        def of_rows(matrix: csr_matrix) -> csr_matrix:
            return matrix if every else matrix[rows]

        def at_pairs(matrix: csr_matrix) -> np.ndarray:
            # A few customers' rows are read dense (sparse indexing costs more than the
            # copy); a block of many, sparse. The same values either way.
            if len(rows) <= _DENSE_ROWS:
                picked: np.ndarray = matrix.toarray()[owner, cand]
                return picked
            return np.asarray(matrix[owner, cand]).ravel()

        user_hist = of_rows(cut.weights)
        user_counts = of_rows(cut.counts)
        columns = []
        for name in generators:
            columns += [scores[name][owner, cand], ranks[name][owner, cand]]
        own = at_pairs(user_hist)
        age = at_pairs(of_rows(cut.purchase_age))
        seen = at_pairs(of_rows(cut.seen))
        own_purchases = at_pairs(user_counts)
        bought = np.asarray((user_counts > 0).sum(axis=1)).ravel()
        rebought = np.asarray((user_counts > 1).sum(axis=1)).ravel()
        user_repeat = (rebought / np.maximum(bought, 1))[owner]
        item_repeat = cut.item_repeat[cand]
        cat_share = ctx.category_shares.of(user_hist)[owner, ctx.category_codes[cand]]
        brand_share = ctx.brand_shares.of(user_hist)[owner, ctx.brand_codes[cand]]
        basket = ctx.usual_price(user_hist)[owner]
        price_ratio = ctx.price[cand] / np.where(basket > 0, basket, np.nan)
        user_items = np.asarray((user_hist > 0).sum(axis=1)).ravel()[owner]
        user_weight = np.asarray(user_hist.sum(axis=1)).ravel()[owner]
        again = np.full(len(cand), np.nan, dtype=np.float32)
        if repeat is not None:
            again[age > 0] = repeat.at(cand[age > 0], age[age > 0] - 1.0)
        columns += [ctx.popularity[cand], ctx.trend[cand], ctx.store_share[cand], item_repeat,
                    own, own_purchases, age, seen, cat_share, brand_share, price_ratio,
                    user_items, user_weight, user_repeat, cut.store_share[rows][owner],
                    again]  # fmt: skip
        return np.column_stack(columns).astype(np.float32), cand, groups

    # -- saving --------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {"ranker": np.array(self.ranker_.model_to_string())}
        for name, g in self.generators_.items():
            state.update({f"{name}.{k}": v for k, v in g._state().items()})
        state.update(self.context_.arrays())
        state.update(csr_parts("cut.counts", self.cut_.counts))
        state.update(csr_parts("cut.seen", self.cut_.seen))
        state["cut.store_share"] = self.cut_.store_share
        return state

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.ranker_ = lgb.Booster(model_str=str(state["ranker"]))
        self.generators_ = {}
        for name, g in self._generators().items():
            g.users_, g.items_ = self.users_, self.items_
            g.item_category_, g.history_ = self.item_category_, self.history_
            g.purchase_age_, g.as_of_ = self.purchase_age_, self.as_of_
            g.repeat_ = self.repeat_
            prefix = f"{name}."
            g._restore({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
            self.generators_[name] = g
        self.context_ = ItemContext.from_arrays(state)
        counts, seen = csr_from(state, "cut.counts"), csr_from(state, "cut.seen")
        share = state["cut.store_share"]
        self.cut_ = Cut(self.history_, self.purchase_age_, counts, seen, share)
