"""Learned objects with a small fit / recommend / save / load contract (see `models.base`)."""

from models.base import REGISTRY, Filters, ModelNotFitted, Recommender
from models.ease import EASE
from models.factors import ALS, BPR
from models.ids import UnknownCustomer, UnknownItem
from models.neighbours import ItemKNN
from models.popularity import RecentPopularity
from models.repurchase import Repurchase
from models.tifu import TifuKNN
from models.two_stage import TwoStage

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "REGISTRY",
    "Filters",
    "ItemKNN",
    "ModelNotFitted",
    "RecentPopularity",
    "Recommender",
    "Repurchase",
    "TifuKNN",
    "TwoStage",
    "UnknownCustomer",
    "UnknownItem",
]
