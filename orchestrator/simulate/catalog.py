"""The simulated shop's world: stores with their geofences, products, and where customers live.

These constants are shared with the demo rules in `examples/rules/`: a geofence id, centre or radius
changed here must be changed there too, or the umbrella persona walks past a store the rules do not know.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Store:
    """A shop with the geofence around it, as declared under `geofences:` in a rule file."""

    id: str
    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True)
class Product:
    sku: str
    price: float
    category: str


@dataclass(frozen=True)
class Region:
    """Where a customer lives: their timezone, locale and the store they may walk past."""

    timezone: str
    locale: str
    store: Store
    weight: float


STORES: tuple[Store, ...] = (
    Store("paris-opera", 48.8719, 2.3316, 300),
    Store("montreal-downtown", 45.5017, -73.5673, 400),
    Store("london-oxford-circus", 51.5154, -0.1410, 300),
    Store("new-york-soho", 40.7233, -74.0030, 300),
    Store("tokyo-shibuya", 35.6595, 139.7005, 300),
)
STORE_BY_ID: dict[str, Store] = {store.id: store for store in STORES}

SOFA = Product("SOFA-VELVET-GREEN", 899.0, "sofas")
UMBRELLAS: tuple[Product, ...] = (
    Product("UMBRELLA-STORM", 29.0, "umbrellas"),
    Product("UMBRELLA-COMPACT", 19.0, "umbrellas"),
)
EVERYDAY: tuple[Product, ...] = (
    Product("LAMP-BRASS", 79.0, "lighting"),
    Product("RUG-WOOL", 249.0, "rugs"),
    Product("CHAIR-OAK", 120.0, "chairs"),
    Product("MUG-SET", 24.0, "kitchen"),
    Product("CUSHION-LINEN", 35.0, "textiles"),
)
PRODUCTS: tuple[Product, ...] = (SOFA, *UMBRELLAS, *EVERYDAY)

REGIONS: tuple[Region, ...] = (
    Region("Europe/Paris", "fr-FR", STORE_BY_ID["paris-opera"], 5),
    Region("America/Montreal", "fr-CA", STORE_BY_ID["montreal-downtown"], 2),
    Region("Europe/London", "en-GB", STORE_BY_ID["london-oxford-circus"], 1),
    Region("America/New_York", "en-US", STORE_BY_ID["new-york-soho"], 1),
    Region("Asia/Tokyo", "ja-JP", STORE_BY_ID["tokyo-shibuya"], 1),
)

_METRES_PER_DEGREE = 111_320.0


def point_near(rng: random.Random, store: Store, min_m: float, max_m: float) -> tuple[float, float]:
    """A point between `min_m` and `max_m` metres from the store, rounded to ~1 m like a phone's fix."""
    distance = rng.uniform(min_m, max_m)
    bearing = rng.uniform(0, 2 * math.pi)
    lat = store.lat + distance * math.cos(bearing) / _METRES_PER_DEGREE
    lon = store.lon + distance * math.sin(bearing) / (_METRES_PER_DEGREE * math.cos(math.radians(store.lat)))
    return round(lat, 5), round(lon, 5)
