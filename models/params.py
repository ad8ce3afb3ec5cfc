"""Hyper-parameters the scikit-learn way: whatever `__init__` takes, read back by name."""

from __future__ import annotations

import inspect
from typing import Any, Self


class HyperParams:
    """`get_params()` for classes whose `__init__` stores each argument under its own name."""

    def get_params(self) -> dict[str, Any]:
        """Every named `__init__` argument, read back from the attribute of the same name."""
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        params = inspect.signature(type(self).__init__).parameters.values()
        return {
            p.name: getattr(self, p.name) for p in params if p.kind in named and p.name != "self"
        }

    def unfitted(self) -> Self:
        """A new, unfitted model of the same class with the same hyper-parameters."""
        return type(self)(**self.get_params())
