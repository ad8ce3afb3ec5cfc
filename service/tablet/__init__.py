"""The store tablet page: server-rendered HTML over the same services as the API."""

from service.tablet.pages import TabletRefused, refused_page, router

__all__ = ["TabletRefused", "refused_page", "router"]
