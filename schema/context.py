from __future__ import annotations

from typing import TypeAlias

from strawberry.types import Info as StrawberryInfo

from resolvers.context import Caller

Info: TypeAlias = StrawberryInfo[Caller, None]
