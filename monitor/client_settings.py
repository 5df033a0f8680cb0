"""The client's settings: the CLI's, as keyword arguments, each falling back
to the same `NNMON_*` environment variable and then to the CLI's default."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nnmon.streams.settings import BrokerSettings, Retention, StreamNames

T = TypeVar("T")

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ClientSettings:
    broker: BrokerSettings
    names: StreamNames
    retention: Retention


def _given(value: T | None, variable: str, default: T, convert: Callable[[str], T]) -> T:
    if value is not None:
        return value
    text = os.environ.get(variable)
    if text is None or text == "":
        return default
    try:
        return convert(text)
    except ValueError:
        raise ValueError(f"{variable}={text!r} is not a valid value") from None


def _flag(text: str) -> bool:
    return text.strip().lower() in _TRUE


def _password(password: str | None, password_file: str | Path | None) -> str:
    if password is not None:
        return password
    file = password_file if password_file is not None else os.environ.get("NNMON_PASSWORD_FILE")
    if file:  # its first line, as the CLI reads it
        try:
            lines = Path(file).read_text().splitlines()
        except OSError as error:
            raise ValueError(f"cannot read the password file {file} ({error.strerror})") from None
        return lines[0] if lines else ""
    return _given(None, "NNMON_PASSWORD", BrokerSettings.password, str)


def resolve(host: str | None = None, port: int | None = None, user: str | None = None,
            password: str | None = None, password_file: str | Path | None = None, vhost: str | None = None,
            tls: bool | None = None, tls_ca_file: str | Path | None = None, load_balancer: bool | None = None,
            stream_prefix: str | None = None, dead_after_s: float | None = None,
            **unknown: Any) -> ClientSettings:
    """The settings of `Monitor(...)`; ValueError naming a wrong one."""
    if unknown:
        raise TypeError(f"Monitor got unknown settings: {', '.join(sorted(unknown))}")
    ca_file = _given(None if tls_ca_file is None else Path(tls_ca_file), "NNMON_TLS_CA_FILE", None, Path)
    broker = BrokerSettings(
        host=_given(host, "NNMON_HOST", BrokerSettings.host, str),
        port=_given(port, "NNMON_PORT", BrokerSettings.port, int),
        user=_given(user, "NNMON_USER", BrokerSettings.user, str),
        password=_password(password, password_file),
        vhost=_given(vhost, "NNMON_VHOST", BrokerSettings.vhost, str),
        # A CA file means TLS, as on the CLI (--tls-ca-file), unless tls=False is said outright.
        tls=_given(tls, "NNMON_TLS", False, _flag) or (tls is None and ca_file is not None),
        tls_ca_file=ca_file,
        load_balancer=_given(load_balancer, "NNMON_LOAD_BALANCER", False, _flag),
        dead_after_s=_given(dead_after_s, "NNMON_DEAD_AFTER", BrokerSettings.dead_after_s, float),
    )
    retention = Retention(
        _given(None, "NNMON_MAX_AGE", Retention.max_age, str),
        _given(None, "NNMON_MAX_BYTES", Retention.max_bytes, int),
        _given(None, "NNMON_SEGMENT_BYTES", Retention.segment_bytes, int),
    )
    prefix = _given(stream_prefix, "NNMON_STREAM_PREFIX", "", str)
    return ClientSettings(broker, StreamNames(prefix), retention)
