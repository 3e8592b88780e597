"""API tokens: only their hashes are stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    select,
    update,
)

from gateway.store.engine import StoreEngine
from gateway.store.schema import (
    api_tokens,
)


class TokenStore(StoreEngine):
    """API tokens by name and hash."""

    async def create_token(self, name: str, token_hash: str, role: str, scope: str) -> None:
        async with self.write() as conn:
            await conn.execute(
                api_tokens.insert().values(
                    name=name,
                    token_hash=token_hash,
                    role=role,
                    scope=scope,
                    created_at=self.clock(),
                )
            )

    async def list_tokens(self) -> list[dict[str, Any]]:
        async with self.read() as conn:
            rows = await conn.execute(
                select(
                    api_tokens.c.name,
                    api_tokens.c.role,
                    api_tokens.c.scope,
                    api_tokens.c.created_at,
                    api_tokens.c.revoked_at,
                ).order_by(api_tokens.c.name)
            )
            return [dict(r) for r in rows.mappings()]

    async def revoke_token(self, name: str) -> bool:
        async with self.write() as conn:
            result = await conn.execute(
                update(api_tokens)
                .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
        return bool(result.rowcount)

    async def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        async with self.read() as conn:
            row = (
                (
                    await conn.execute(
                        select(api_tokens.c.name, api_tokens.c.role, api_tokens.c.scope).where(
                            api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None)
                        )
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None
