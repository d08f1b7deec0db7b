"""The embedded SQLite database, its WAL and shared-memory files, and the secrets `xkit dev` keeps under
`.xkit/` are readable by their owner only: created so under a permissive umask, and tightened when found
looser. (SQLite only: PostgreSQL keeps its own files.)"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.dev import _with_local_secrets
from gateway.settings import Settings
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The common default, under which a plain create would make files world-readable."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loosen(paths: list[Path]) -> None:
    for path in paths:
        path.touch()  # empty WAL and shared-memory files are what a clean shutdown may leave
        path.chmod(0o644)


def sqlite_files(database: Path) -> list[Path]:
    return [database, *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm"))]


async def test_the_database_with_its_wal_and_shared_memory_files_is_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "data" / "xkit.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(text("SELECT 1 FROM platforms"))
        # Checked while the connection is open: SQLite removes the WAL and shared-memory files at the last close.
        assert mode(database.parent) == 0o700
        for path in sqlite_files(database):
            assert path.exists(), path
            assert mode(path) == 0o600, path
    await engine.dispose()


async def test_database_files_left_readable_by_an_earlier_run_are_tightened(tmp_path: Path) -> None:
    database = tmp_path / "xkit.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    await upgrade(engine)
    await engine.dispose()
    loosen(sqlite_files(database))
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    for path in sqlite_files(database):
        assert mode(path) == 0o600, path
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM platforms"))).scalar_one() == 0
    await engine.dispose()


def test_an_existing_folder_of_the_operators_choice_is_left_as_it_is(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    create_engine(f"sqlite+aiosqlite:///{tmp_path / 'xkit.db'}")
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "xkit.db") == 0o600


def test_the_dev_secret_key_and_api_key_are_owner_only_in_an_owner_only_folder(tmp_path: Path) -> None:
    data_dir = tmp_path / ".xkit"
    settings = _with_local_secrets(Settings(data_dir=data_dir, secret_key=None, dev_api_key=None))
    assert settings.secret_key is not None and settings.dev_api_key is not None
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "secret.key") == 0o600
    assert mode(data_dir / "dev_api_key") == 0o600


def test_dev_secrets_left_readable_are_tightened_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / ".xkit"
    first = _with_local_secrets(Settings(data_dir=data_dir, secret_key=None, dev_api_key=None))
    data_dir.chmod(0o755)
    for name in ("secret.key", "dev_api_key"):
        (data_dir / name).chmod(0o644)
    again = _with_local_secrets(Settings(data_dir=data_dir, secret_key=None, dev_api_key=None))
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "secret.key") == 0o600
    assert mode(data_dir / "dev_api_key") == 0o600
    assert again.secret_key == first.secret_key
    assert again.dev_api_key == first.dev_api_key
