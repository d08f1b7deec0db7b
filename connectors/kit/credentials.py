"""A connection's credentials as the connector kit sees them (the sync layer stores them encrypted)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass
class Credentials:
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = None
    api_key: str | None = None
    scopes: list[str] = field(default_factory=list)
    # Provider-specific facts that come with the token, e.g. Salesforce's instance_url.
    extra: dict[str, Any] = field(default_factory=dict)
    # When these credentials were issued or imported: of two copies, the later one wins.
    obtained_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def expires_within(self, margin: timedelta) -> bool:
        return self.expires_at is not None and self.expires_at - margin <= datetime.now(UTC)

    def with_extra(self, facts: dict[str, Any]) -> Credentials:
        """These credentials with more provider facts (the same object when there are none)."""
        return replace(self, extra={**self.extra, **facts}) if facts else self

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        data["obtained_at"] = self.obtained_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credentials:
        expires_at = data.get("expires_at")
        obtained_at = data.get("obtained_at")
        return cls(
            access_token=data.get("access_token"),
            refresh_token=data.get("refresh_token"),
            expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
            api_key=data.get("api_key"),
            scopes=list(data.get("scopes") or []),
            extra=dict(data.get("extra") or {}),
            obtained_at=datetime.fromisoformat(obtained_at) if obtained_at else datetime(1970, 1, 1, tzinfo=UTC),
        )

    @classmethod
    def from_token_response(cls, token: dict[str, Any], previous: Credentials | None = None) -> Credentials:
        """Build credentials from an OAuth token endpoint answer, keeping the old refresh token
        when the provider does not send a new one."""
        expires_in = token.get("expires_in")
        scopes = token.get("scopes") or token.get("scope") or []
        if isinstance(scopes, str):
            scopes = scopes.split()
        known = {"access_token", "refresh_token", "expires_in", "expires_at", "scope", "scopes", "token_type"}
        return cls(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token") or (previous.refresh_token if previous else None),
            expires_at=datetime.now(UTC) + timedelta(seconds=int(expires_in)) if expires_in else None,
            scopes=list(scopes) or (previous.scopes if previous else []),
            extra={
                **(previous.extra if previous else {}),
                **{k: v for k, v in token.items() if k not in known},
            },
        )
