"""The touchpoint event: the one contract every channel app publishes to (SPEC §1).

Validation is strict about what the orchestrator relies on and lenient about everything else:
unknown top-level and property fields are kept, well-known event types have their properties
checked, and every error names the field in words a channel developer can act on.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import from_json

MAX_EVENT_BYTES = 1024 * 1024

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)


def _rfc3339(value: Any) -> datetime:
    """Accept only RFC 3339 text with an explicit offset, so event time is never guessed."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("missing timezone offset (add Z or +hh:mm)")
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string, e.g. 2026-05-04T09:00:00Z")
    match = _RFC3339.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp (e.g. 2026-05-04T09:00:00Z)")
    if match.group("offset") is None:
        raise ValueError("missing timezone offset (add Z or +hh:mm)")
    text = value.replace("z", "Z").replace("Z", "+00:00")
    if match.group(1) and len(match.group(1)) > 7:  # Python keeps microseconds only
        text = text.replace(match.group(1), match.group(1)[:7])
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date and time ({exc})") from None


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]
EventType = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", max_length=128)
]
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number")
    return value


class Geo(BaseModel):
    model_config = ConfigDict(extra="allow")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class EventContext(BaseModel):
    """Where the event happened; only the fields the engine reads are typed."""

    model_config = ConfigDict(extra="allow")

    geo: Geo | None = None
    store_id: str | None = None
    locale: str | None = None
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
            raise ValueError(f"{value!r} is not an IANA timezone (e.g. Europe/Paris)") from None
        return value


class _Props(BaseModel):
    """Strict, so a property is what the JSON Schema says (no `"false"` → False, no `"2"` → 2)."""

    model_config = ConfigDict(extra="allow", strict=True)


class IdentifyProps(_Props):
    traits: dict[str, Any] = Field(default_factory=dict)


class ConsentProps(_Props):
    channel: Channel
    granted: bool


class ProductViewedProps(_Props):
    sku: Identifier
    price: float | None = Field(None, ge=0, allow_inf_nan=False)


class CartItemAddedProps(_Props):
    sku: Identifier
    qty: float = Field(1, gt=0, allow_inf_nan=False)
    price: float | None = Field(None, ge=0, allow_inf_nan=False)


class CartItemRemovedProps(_Props):
    sku: Identifier


class OrderCompletedProps(_Props):
    order_id: Identifier
    total: float = Field(ge=0, allow_inf_nan=False)


class ChatMessageProps(_Props):
    text: str | None = None
    sentiment: float | None = Field(None, ge=-1, le=1, allow_inf_nan=False)
    intent: str | None = None


WELL_KNOWN_PROPERTIES: dict[str, type[_Props]] = {
    "identify": IdentifyProps,
    "consent.updated": ConsentProps,
    "product.viewed": ProductViewedProps,
    "cart.item_added": CartItemAddedProps,
    "cart.item_removed": CartItemRemovedProps,
    "order.completed": OrderCompletedProps,
    "chat.message": ChatMessageProps,
}


# Defaults of well-known properties that the models above declare (a missing `qty` is 1).
PROPERTY_DEFAULTS: dict[str, dict[str, Any]] = {"cart.item_added": {"qty": 1}}


class Touchpoint(BaseModel):
    """One customer touchpoint, exactly as a channel app publishes it."""

    model_config = ConfigDict(extra="allow", frozen=True, title="Touchpoint")

    # Derived once at validation, kept in the instance dict (not fields: never serialised), because
    # the engine reads them several times per event and private attributes are slow to reach.
    ts: ClassVar[float]  # event time as Unix seconds: the engine's clock unit
    props: ClassVar[dict[str, Any]]  # properties with the well-known defaults applied (`qty` 1)

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    type: EventType
    channel: Channel
    occurred_at: Timestamp
    customer_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    identifiers: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")], Identifier] | None = (
        None
    )
    properties: dict[str, Any] = Field(default_factory=dict)
    context: EventContext | None = None

    @model_validator(mode="after")
    def _checks(self, info: ValidationInfo) -> Touchpoint:
        if info.context is _REVALIDATION:
            return self  # validated in full when it entered: these checks cannot fail now
        if not (self.customer_id or self.anonymous_id or self.identifiers):
            raise ValueError("one of customer_id, anonymous_id or identifiers is required")
        props_model = WELL_KNOWN_PROPERTIES.get(self.type)
        if props_model is not None:
            try:
                props_model.model_validate(self.properties)
            except ValidationError as exc:
                raise ValueError(describe_errors(exc, prefix="properties")) from None
        if self.type == "location.updated" and (self.context is None or self.context.geo is None):
            raise ValueError("location.updated needs context.geo {lat, lon}")
        return self

    def model_post_init(self, _context: Any) -> None:
        defaults = PROPERTY_DEFAULTS.get(self.type)
        self.__dict__["ts"] = self.occurred_at.timestamp()
        self.__dict__["props"] = {**defaults, **self.properties} if defaults else self.properties


class InvalidEvent(ValueError):
    """Raised with a message meant for the channel developer and the dead-letter record."""


_ADAPTER: TypeAdapter[Touchpoint] = TypeAdapter(Touchpoint)
_REVALIDATION = object()  # the validation context of `parse_validated_touchpoint`


def describe_errors(error: ValidationError, prefix: str = "") -> str:
    """Turn pydantic's error list into one line per problem, each naming its field."""
    parts: list[str] = []
    for item in error.errors(include_url=False):
        path = [prefix] if prefix else []
        path += [str(p) for p in item["loc"] if p not in ("function-after", "function-before")]
        loc = ".".join(path)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required"
        elif item["type"] == "json_invalid":
            loc, message = "", f"not valid JSON ({item['ctx'].get('error', message)})"
        elif item["type"] in ("model_type", "dict_type") and not loc:
            message = "an event must be a JSON object"
        parts.append(f"`{loc}`: {message}" if loc else message)
    return "; ".join(parts)


def parse_touchpoint(raw: bytes | str) -> Touchpoint:
    """Validate one Kafka message value; raise `InvalidEvent` with a human-readable reason."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(f"event is {size} bytes, over the {MAX_EVENT_BYTES}-byte (1 MiB) limit")
    try:
        data = from_json(raw, allow_inf_nan=False)  # NaN and Infinity are not JSON (RFC 8259)
    except ValueError as exc:  # also invalid UTF-8, or nesting deeper than the parser allows
        raise InvalidEvent(f"not valid JSON ({exc})") from None
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise InvalidEvent(describe_errors(exc)) from None
    except RecursionError as exc:
        raise InvalidEvent(f"not a valid event ({exc})") from None


def parse_validated_touchpoint(raw: bytes) -> Touchpoint:
    """Rebuild a touchpoint from bytes that `parse_touchpoint` accepted earlier (the worker's hops).

    Fields are still typed and converted as always, but the whole-event checks of `_checks`
    (an id present, the well-known properties' own models, a geo on location updates) and the size
    and NaN guards are not repeated: they held when the event entered, and the bytes are the same.
    Parsing straight from JSON also skips the intermediate Python objects. Anything that is not such
    bytes must go through `parse_touchpoint`.
    """
    return _ADAPTER.validate_json(raw, context=_REVALIDATION)


def touchpoint_from_dict(data: dict[str, Any]) -> Touchpoint:
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise InvalidEvent(describe_errors(exc)) from None
