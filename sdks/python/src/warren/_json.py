"""Reading the API's JSON: typed field getters that raise
:class:`~warren.errors.ProtocolError` naming the field, and RFC 3339 times."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional

from .errors import ProtocolError

JsonObject = Mapping[str, Any]

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(Z|z|[+-]\d{2}:\d{2})$"
)


def parse_time(value: str) -> datetime:
    """Parses an RFC 3339 timestamp (any number of fraction digits, ``Z`` or an
    offset) into an aware UTC datetime; Python 3.9's ``fromisoformat`` takes
    neither ``Z`` nor nanoseconds."""
    m = _RFC3339.match(value)
    if m is None:
        raise ProtocolError("invalid_response", None, f"not an RFC 3339 time: {value!r}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    micros = int((m.group(7) or "0")[:6].ljust(6, "0"))
    zone = m.group(8)
    tz = timezone.utc
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    return datetime(year, month, day, hour, minute, second, micros, tzinfo=tz).astimezone(
        timezone.utc
    )


def _bad(key: str, want: str, obj: JsonObject) -> ProtocolError:
    return ProtocolError(
        "invalid_response", None, f"field {key!r} should be {want}, got {obj.get(key)!r}"
    )


def get_str(obj: JsonObject, key: str) -> str:
    """A required string field."""
    value = obj.get(key)
    if not isinstance(value, str):
        raise _bad(key, "a string", obj)
    return value


def get_opt_str(obj: JsonObject, key: str) -> Optional[str]:
    """An optional (absent or null) string field."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(key, "a string or null", obj)
    return value


def get_int(obj: JsonObject, key: str, default: Optional[int] = None) -> int:
    """A required integer field (``default`` when absent)."""
    value = obj.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _bad(key, "an integer", obj)


def get_opt_int(obj: JsonObject, key: str) -> Optional[int]:
    """An optional (absent or null) integer field."""
    value = obj.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise _bad(key, "an integer or null", obj)


def get_float(obj: JsonObject, key: str) -> float:
    """A required number field."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(key, "a number", obj)
    return float(value)


def get_opt_float(obj: JsonObject, key: str) -> Optional[float]:
    """An optional (absent or null) number field."""
    value = obj.get(key)
    if value is None:
        return None
    return get_float(obj, key)


def get_bool(obj: JsonObject, key: str, default: Optional[bool] = None) -> bool:
    """A required boolean field (``default`` when absent)."""
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise _bad(key, "a boolean", obj)
    return value


def get_str_map(obj: JsonObject, key: str) -> Dict[str, str]:
    """A string-to-string map field (absent or null: empty)."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _bad(key, "a map of strings", obj)
    return dict(value)


def get_list(obj: JsonObject, key: str) -> List[Any]:
    """A required array field."""
    value = obj.get(key)
    if not isinstance(value, list):
        raise _bad(key, "an array", obj)
    return value


def as_object(value: Any, what: str) -> JsonObject:
    """``value`` if it is a JSON object, else a :class:`ProtocolError`."""
    if not isinstance(value, dict):
        raise ProtocolError("invalid_response", None, f"{what} should be an object, got {value!r}")
    return value


def get_time(obj: JsonObject, key: str) -> datetime:
    """A required RFC 3339 time field."""
    return parse_time(get_str(obj, key))


def get_opt_time(obj: JsonObject, key: str) -> Optional[datetime]:
    """An optional RFC 3339 time field."""
    value = get_opt_str(obj, key)
    return None if value is None else parse_time(value)


def get_object(obj: JsonObject, key: str) -> Dict[str, Any]:
    """An object field (absent or null: empty)."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(key, "an object", obj)
    return dict(value)
