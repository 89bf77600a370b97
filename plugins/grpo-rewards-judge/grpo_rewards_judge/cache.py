"""The on-disk cache of judge replies: one SQLite file, shared by runs and processes.

Keys are :func:`grpo_rewards_judge.rubrics.cache_key` (model + the rendered
messages); values are the judge's raw reply, so a better parser applies to old
replies too. Only replies are stored: a call that failed is asked again next
time. The file is opened per batch (cheap) in WAL mode, so several ranks or a
``grpo-core score`` beside a training run can share it. A cache that cannot be
read or written (a read-only folder, a full disk) is reported once on stderr
and skipped: the judge is asked instead, and training goes on.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path
from typing import Iterable

OFF = ("", "off", "none")
_warned: set[str] = set()
_SCHEMA = "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, model TEXT, reply TEXT, created REAL)"


class ReplyCache:
    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()

    @staticmethod
    def open(path: str) -> "ReplyCache | None":
        """The cache at ``path``, or None when ``path`` turns caching off."""
        return None if path.strip().lower() in OFF else ReplyCache(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(_SCHEMA)
        return con

    def _warn(self, exc: Exception) -> None:
        if str(self.path) not in _warned:
            _warned.add(str(self.path))
            print(f"grpo-rewards-judge: warning: the judge cache {str(self.path)!r} is not usable ({exc}); "
                  "judging without it. Set the reward option cache to a writable file, or cache=off.", file=sys.stderr)

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The cached replies of ``keys`` (those found)."""
        try:
            return self._get_many(list(dict.fromkeys(keys)))
        except (sqlite3.Error, OSError) as exc:
            self._warn(exc)
            return {}

    def put_many(self, model: str, replies: dict[str, str]) -> None:
        try:
            self._put_many(model, replies)
        except (sqlite3.Error, OSError) as exc:
            self._warn(exc)

    def _get_many(self, keys: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        con = self._connect()
        try:
            for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
                chunk = keys[start : start + 500]
                rows = con.execute(f"SELECT key, reply FROM replies WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                out.update(rows.fetchall())
        finally:
            con.close()
        return out

    def _put_many(self, model: str, replies: dict[str, str]) -> None:
        if not replies:
            return
        con = self._connect()
        try:
            with con:
                now = time.time()
                con.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)",
                                [(k, model, v, now) for k, v in replies.items()])
        finally:
            con.close()

    def count(self) -> int:
        """Replies stored."""
        con = self._connect()
        try:
            return con.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
        finally:
            con.close()
