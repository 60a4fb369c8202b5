"""Administering the benchmark's PostgreSQL server: URLs, fresh databases, settings."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import sqlalchemy as sa


def libpq_dsn(url: str) -> str:
    """postgresql+asyncpg://... -> postgresql://... for asyncpg.connect."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_url(url: str, database: str) -> str:
    return sa.make_url(url).set(drivername="postgresql+asyncpg", database=database).render_as_string(hide_password=False)


async def admin(url: str, *statements: str) -> list[Any]:
    """Run each statement on its own; the first column of each result."""
    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        return [await conn.fetchval(statement) for statement in statements]
    finally:
        await conn.close()


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create database ``name``; returns its asyncpg URL."""
    asyncio.run(admin(admin_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    return database_url(admin_url, name)


def checkpoint(admin_url: str) -> None:
    try:
        asyncio.run(admin(admin_url, "CHECKPOINT"))
    except asyncpg.PostgresError:
        pass  # not a superuser on a --url server: measure without it


def server_description(admin_url: str, *settings: str) -> str:
    """Version and durability settings, plus any other named ``settings``."""
    names = ("fsync", "synchronous_commit", "full_page_writes", *settings)
    version, *values = asyncio.run(
        admin(admin_url, "SELECT split_part(version(), ' on ', 1)", *(f"SHOW {name}" for name in names))
    )
    return f"{version}; " + ", ".join(f"{name}={value}" for name, value in zip(names, values, strict=True))
