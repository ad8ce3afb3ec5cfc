"""The store tablet page: server-rendered HTML over the same services as the API."""

from service.tablet.pages import router

__all__ = ["router"]
