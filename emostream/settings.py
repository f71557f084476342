"""Typed settings, read from ``EMOSTREAM_*`` environment variables: the mechanism, and
the Kafka connection every stage shares.

Each setting is declared once, with its type, default and a docstring that is its
documentation (the settings table is printed from these declarations by
``emostream settings``). A setting ``foo_bar`` is read from ``EMOSTREAM_FOO_BAR``; a secret
may instead be read from the file named by ``EMOSTREAM_FOO_BAR_FILE`` (Docker/Kubernetes
secrets). Secrets never appear in ``repr`` or in the table.

``KafkaSettings`` holds the broker connection and the topics; the ingest services extend
it (``ingest/settings.py``: producer and sources) and so does the worker
(``worker/settings.py``: batching, images, Redis, metrics), so one object configures one
process and no process carries another stage's secrets.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "EMOSTREAM_"


class SettingError(ValueError):
    pass


@dataclass
class Setting:
    default: Any
    type: type
    doc: str
    secret: bool = False
    name: str = ""
    choices: tuple[str, ...] | None = None
    """The values allowed (a str setting that names one of a few options)."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    @property
    def env(self) -> str:
        return PREFIX + self.name.upper()

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj._values[self.name]

    def parse(self, raw: str) -> Any:
        try:
            if self.type is bool:
                low = raw.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(raw)
            if self.type is list:
                return [x.strip() for x in raw.split(",") if x.strip()]
            value = self.type(raw)
        except ValueError as exc:
            raise SettingError(f"{self.env}={raw!r} is not a valid {self.type.__name__}") from exc
        if self.choices and value not in self.choices:
            raise SettingError(f"{self.env}={raw!r} is not one of {', '.join(self.choices)}")
        return value


def setting(
    default: Any,
    doc: str,
    *,
    type: type | None = None,
    secret: bool = False,
    choices: tuple[str, ...] | None = None,
) -> Any:
    kind = type or (list if isinstance(default, list) else default.__class__)
    return Setting(default, kind, doc, secret, choices=choices)


class BaseSettings:
    """The mechanism: values from overrides, ``EMOSTREAM_*`` variables, ``*_FILE`` secrets or
    the declared defaults; subclasses declare the settings."""

    def __init__(self, env: Mapping[str, str] | None = None, **overrides: Any) -> None:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, spec in self.declared().items():
            if name in overrides:
                values[name] = overrides.pop(name)
            elif spec.env in env:
                values[name] = spec.parse(env[spec.env])
            elif spec.secret and spec.env + "_FILE" in env:
                with open(env[spec.env + "_FILE"], encoding="utf-8") as fh:
                    values[name] = fh.read().strip()
            else:
                values[name] = spec.default
        if overrides:
            raise SettingError(f"unknown settings: {sorted(overrides)}")
        self._values = values

    @classmethod
    def declared(cls) -> dict[str, Setting]:
        out: dict[str, Setting] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Setting):
                    out[name] = value
        return out

    def replace(self, **changes: Any) -> BaseSettings:
        merged = {**self._values, **changes}
        return type(self)(env={}, **merged)

    def __repr__(self) -> str:
        shown = {
            n: ("***" if s.secret and self._values[n] else self._values[n])
            for n, s in self.declared().items()
        }
        return f"{type(self).__name__}({shown})"

    def effective(self, only: Collection[str] | None = None) -> str:
        """The values in force, one ``VARIABLE=value`` line each, secrets masked."""
        lines = []
        for name, spec in self.declared().items():
            if only is not None and name not in only:
                continue
            value = self._values[name]
            if isinstance(value, list):
                value = ",".join(value)
            shown = ("***" if value else "") if spec.secret else value
            lines.append(f"{spec.env}={shown}")
        return "\n".join(lines)

    @classmethod
    def table(cls, only: Collection[str] | None = None) -> str:
        """The settings (those named in ``only``, default all) as a Markdown table."""
        rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
        for name, spec in cls.declared().items():
            if only is not None and name not in only:
                continue
            default = spec.default
            if isinstance(default, list):
                default = ",".join(default)
            shown = "(secret)" if spec.secret else f"`{default}`"
            kind = spec.type.__name__ + (" (comma-separated)" if spec.type is list else "")
            extra = f" Or `{spec.env}_FILE`." if spec.secret else ""
            rows.append(f"| `{spec.env}` | {kind} | {shown} | {spec.doc}{extra} |")
        return "\n".join(rows)


class KafkaSettings(BaseSettings):
    """The broker connection and the topics, shared by the ingest services and the worker."""

    # -- Kafka ------------------------------------------------------------------------------
    kafka_bootstrap: str = setting("localhost:9092", "Kafka bootstrap servers, host:port[,...].")
    topic_posts: str = setting("emostream.posts", "Topic the ingest services write posts to.")
    topic_dead_letter: str = setting(
        "emostream.dead-letter", "Topic for messages the worker cannot decode, with a reason."
    )
    kafka_security_protocol: str = setting(
        "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str = setting("PLAIN", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    kafka_sasl_username: str = setting("", "SASL user name.")
    kafka_sasl_password: str = setting("", "SASL password.", secret=True)
    kafka_ssl_cafile: str = setting("", "CA bundle to verify the brokers (SSL, SASL_SSL).")

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options in kafka-python's terms (the worker maps them to faust's)."""
        proto = self.kafka_security_protocol.upper()
        allowed = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        if proto not in allowed:
            raise SettingError(f"EMOSTREAM_KAFKA_SECURITY_PROTOCOL must be one of {allowed}")
        opts: dict[str, Any] = {"security_protocol": proto}
        if proto.startswith("SASL"):
            if not self.kafka_sasl_username or not self.kafka_sasl_password:
                raise SettingError(f"{proto} needs EMOSTREAM_KAFKA_SASL_USERNAME and _PASSWORD")
            opts.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password,
            )
        if proto.endswith("SSL") and self.kafka_ssl_cafile:
            opts["ssl_cafile"] = self.kafka_ssl_cafile
        return opts
