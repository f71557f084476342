"""Least privilege in Redis: the ACL user of the worker and the read-only user of the API.

The worker needs its store's script and the commands inside it (``store.WRITE_SCRIPT``:
SET, DEL, HSET, EXPIRE, HINCRBY, XADD), plus what a replay writes (HSET, XADD) and reads
back (HGETALL), on its own keys only (``<prefix>:*``). The API reads, and may only read,
the same keys (``%R~``: read-only key access, and no command outside ``@read``), so it
can neither write nor delete anything whatever it is asked. Neither may run FLUSHALL,
CONFIG, KEYS on other keys, SHUTDOWN, or any admin command; the default user stays for
operators.

docker-compose.yml creates both users (``redis-server --user ...``) from these rules,
their passwords from the ``redis_worker_password`` and ``redis_api_password`` secrets;
``tests/test_redis_acl.py`` holds the two together and runs the worker and the API as
these users against a real ``redis-server``.
"""

from __future__ import annotations

WORKER_USER = "emostream-worker"
API_USER = "emostream-api"
CONNECTION = ("ping",)
"""PING, for health. (redis-py's CLIENT SETINFO on connecting is refused and ignored:
Redis before 7.2 has no such command to allow.)"""
WORKER_COMMANDS = (
    *CONNECTION,
    "evalsha", "eval", "script|load", "script|exists",  # the store's write script
    "set", "del", "hset", "expire", "hincrby", "xadd",  # ... and what it calls
    "hgetall",  # a replay's progress, read back on resume
)  # fmt: skip
API_COMMANDS = (*CONNECTION, "@read")


def rules(user: str, prefix: str = "emo") -> list[str]:
    """The ACL rules of ``user`` (WORKER_USER or API_USER) over keys ``<prefix>:*``."""
    commands: tuple[str, ...]
    if user == WORKER_USER:
        keys, commands = f"~{prefix}:*", WORKER_COMMANDS
    elif user == API_USER:
        keys, commands = f"%R~{prefix}:*", API_COMMANDS
    else:
        raise ValueError(f"no ACL rules for {user!r}")
    return ["resetkeys", keys, "resetchannels", "-@all", *(f"+{c}" for c in commands)]


def server_args(user: str, password: str, prefix: str = "emo") -> list[str]:
    """``redis-server`` arguments that create ``user`` with its rules and password."""
    return ["--user", user, "on", f">{password}", *rules(user, prefix)]
