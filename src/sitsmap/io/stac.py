"""Finding a tile's Sentinel-2 L2A products in a STAC catalog or a STAC API.

A STAC item is one acquisition; its assets are Cloud-Optimized GeoTIFFs read
in place by GDAL (a local file, or a URL through ``/vsicurl/`` or ``/vsis3/``).
The catalog is either a static one on disk (a ``catalog.json`` or
``collection.json``, walked with :mod:`pystac`) or an http(s) STAC API
searched with :mod:`pystac_client`. Items are matched to the tile by their
MGRS properties, whichever style they carry:

- ``s2:mgrs_tile``: ``31UDS`` (Planetary Computer);
- ``mgrs:utm_zone`` + ``mgrs:latitude_band`` + ``mgrs:grid_square``: ``31``, ``U``,
  ``DS`` (Earth Search);
- ``grid:code``: ``MGRS-31UDS`` (Earth Search).

Each band's scaling comes from its asset's ``raster:bands``: reflectance =
DN x scale + offset, so reflectance x 10000 = DN x (scale x 10000) + offset x 10000.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pystac
import pystac_client
from pystac_client.conformance import ConformanceClasses
from pystac_client.exceptions import APIError

from sitsmap.errors import InputDataError
from sitsmap.io.products import select_products, tile_key
from sitsmap.sensors import REFLECTANCE_SCALE, Product, ProductFile
from sitsmap.sensors.sentinel2 import STAC_ASSETS

__all__ = ["find_stac_products", "gdal_href", "item_tile"]

_MGRS = re.compile(r"^(?P<zone>\d{1,2})(?P<band>[C-X])(?P<square>[A-Z]{2})$")
_SEQUENCE = re.compile(r"_(?P<n>\d+)_L2A$", re.IGNORECASE)
_SATELLITE_IN_ID = re.compile(r"^S2(?P<letter>[A-D])_", re.IGNORECASE)
_PAGE_SIZE = 100
_UNSCALED = frozenset({"SCL"})
_STAC_ERRORS = (OSError, ValueError, KeyError, TypeError, pystac.STACError)


def find_stac_products(
    catalog: str | os.PathLike[str],
    tile: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    collection: str = "sentinel-2-l2a",
    assets: Mapping[str, str] = STAC_ASSETS,
) -> list[Product]:
    """Return the products of ``tile`` in ``[start, end]`` found in a STAC catalog, by date.

    Parameters
    ----------
    catalog : str or PathLike
        A local ``catalog.json`` or ``collection.json``, or the URL of a STAC API.
    tile : str
        Tile name, with or without its leading ``T`` (``T31UDS`` or ``31UDS``).
    start, end : datetime.date, optional
        Inclusive date range; open-ended when omitted.
    collection : str
        Collection searched in an API; in a local catalog, items that name another
        collection are ignored.
    assets : mapping of str to str
        Asset key to band name (or ``SCL``); every one of them must be in every item.

    Returns
    -------
    list of Product
        One product per date (the highest processing baseline, then sequence number).

    Raises
    ------
    InputDataError
        If the catalog cannot be read or searched, holds no item of ``tile`` (in the
        range), or an item of the tile lacks one of ``assets``.
    """
    where = str(catalog)
    if _is_url(where):
        items = _api_items(where, tile, start, end, collection)
        products = [_product(item, tile, assets, Path(item.id)) for item in items]
    else:
        items = _local_items(Path(catalog), tile, collection)
        products = [_product(item, tile, assets, _item_path(item)) for item in items]
    if not products:
        raise InputDataError(
            f"no STAC item of tile {tile} in collection {collection} in this catalog", where
        )
    return select_products(products, tile, start, end, where)


def item_tile(properties: Mapping[str, Any]) -> str | None:
    """The MGRS tile (``31UDS``) an item's properties name, or None.

    Reads ``s2:mgrs_tile``, then ``mgrs:utm_zone`` + ``mgrs:latitude_band`` +
    ``mgrs:grid_square``, then ``grid:code`` (``MGRS-31UDS``).
    """
    if properties.get("s2:mgrs_tile"):
        return _normalized_tile(str(properties["s2:mgrs_tile"]))
    parts = [properties.get(f"mgrs:{key}") for key in ("utm_zone", "latitude_band", "grid_square")]
    if all(part is not None for part in parts):
        return _normalized_tile("".join(str(part) for part in parts))
    code = str(properties.get("grid:code") or "")
    if code.upper().startswith("MGRS-"):
        return _normalized_tile(code[len("MGRS-") :])
    return None


def gdal_href(href: str) -> str:
    """What GDAL opens for an absolute href: ``s3://`` → ``/vsis3/``, http(s) → ``/vsicurl/``."""
    if href.startswith("s3://"):
        return "/vsis3/" + href[len("s3://") :]
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    if href.startswith("file://"):
        return href[len("file://") :]
    return href


def _normalized_tile(name: str) -> str:
    """``T1ABC``, ``01abc`` → ``01ABC``: zone on two digits, no ``T``."""
    key = tile_key(name)
    match = _MGRS.match(key)
    if match is None:
        return key
    return f"{int(match['zone']):02d}{match['band']}{match['square']}"


def _is_url(catalog: str) -> bool:
    return catalog.startswith(("http://", "https://"))


def _local_items(path: Path, tile: str, collection: str) -> list[pystac.Item]:
    """The items of ``tile`` (and of ``collection`` when they name one) under a local catalog."""
    if not path.is_file():
        raise InputDataError("STAC catalog not found", path)
    try:
        root = pystac.read_file(str(path.resolve()))
        if not isinstance(root, pystac.Catalog):
            raise InputDataError(f"not a STAC catalog or collection but a {root.STAC_OBJECT_TYPE}")
        items = [
            item
            for item in root.get_items(recursive=True)
            if item.collection_id in (None, collection)
        ]
    except InputDataError as exc:
        raise InputDataError(exc.problem, exc.path or path) from None
    except _STAC_ERRORS as exc:
        raise InputDataError(f"cannot read STAC catalog ({_first_line(exc)})", path) from None
    return _of_tile(items, tile)


def _api_items(
    url: str, tile: str, start: dt.date | None, end: dt.date | None, collection: str
) -> list[pystac.Item]:
    """The items of ``tile`` in ``collection`` an API finds, one search per MGRS property style."""
    found: dict[str, pystac.Item] = {}
    try:
        client = pystac_client.Client.open(url)
        for tile_filter in _tile_filters(client, _normalized_tile(tile), url):
            search = client.search(
                collections=[collection],
                datetime=_period(start, end),
                limit=_PAGE_SIZE,
                **tile_filter,
            )
            found.update((item.id, item) for item in search.items())
    except InputDataError:
        raise
    except (APIError, *_STAC_ERRORS) as exc:
        raise InputDataError(f"cannot search STAC API ({_first_line(exc)})", url) from None
    return _of_tile(found.values(), tile)


def _tile_filters(client: pystac_client.Client, tile: str, url: str) -> list[dict[str, Any]]:
    """Search arguments selecting the tile: the ``query`` extension, else CQL2 ``filter``.

    An API with neither would return the whole collection: refused.
    """
    queries = _tile_queries(tile)
    if client.conforms_to(ConformanceClasses.QUERY):
        return [{"query": query} for query in queries]
    if client.conforms_to(ConformanceClasses.FILTER):
        return [{"filter": _cql2(query), "filter_lang": "cql2-json"} for query in queries]
    raise InputDataError(
        "this STAC API offers neither the query nor the filter extension: cannot search it by tile",
        url,
    )


def _cql2(query: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A ``query`` of equalities as a CQL2-JSON filter."""
    equalities = [
        {"op": "=", "args": [{"property": name}, test["eq"]]} for name, test in query.items()
    ]
    return equalities[0] if len(equalities) == 1 else {"op": "and", "args": equalities}


def _tile_queries(tile: str) -> list[dict[str, dict[str, Any]]]:
    """``query`` extension filters for each way an item may name its MGRS tile."""
    match = _MGRS.match(tile)
    queries: list[dict[str, dict[str, Any]]] = [
        {"grid:code": {"eq": f"MGRS-{tile}"}},
        {"s2:mgrs_tile": {"eq": tile}},
    ]
    if match is not None:
        queries.append(
            {
                "mgrs:utm_zone": {"eq": int(match["zone"])},
                "mgrs:latitude_band": {"eq": match["band"]},
                "mgrs:grid_square": {"eq": match["square"]},
            }
        )
    return queries


def _period(start: dt.date | None, end: dt.date | None) -> str | None:
    """The search's ``datetime`` interval (an end date covers its whole day)."""
    if start is None and end is None:
        return None
    return f"{start.isoformat() if start else '..'}/{end.isoformat() if end else '..'}"


def _of_tile(items: Iterable[pystac.Item], tile: str) -> list[pystac.Item]:
    wanted = _normalized_tile(tile)
    return [item for item in items if item_tile(item.properties) == wanted]


def _item_path(item: pystac.Item) -> Path:
    href = item.get_self_href()
    return Path(gdal_href(href)) if href else Path(item.id)


def _product(item: pystac.Item, tile: str, assets: Mapping[str, str], path: Path) -> Product:
    """An item as a product: its mapped assets' GDAL paths and scaling."""
    return Product(
        path=path,
        tile=f"T{tile_key(tile)}",  # as Theia names it
        date=_item_date(item, path),
        satellite=_satellite(item),
        files=tuple(_files(item, assets, path)),
        version=_version(item),
    )


def _files(item: pystac.Item, assets: Mapping[str, str], path: Path) -> Iterator[ProductFile]:
    # Earth Search's items whose DN already had the BOA offset applied (processing baseline
    # 04.00 and later, reprocessed) still declare offset -0.1 in raster:bands: their own
    # flag says not to apply it again (Element84/earth-search issues 66 and 71).
    offset_applied = item.properties.get("earthsearch:boa_offset_applied") is True
    for key, band in assets.items():
        asset = item.assets.get(key)
        if asset is None:
            raise InputDataError(f"STAC item {item.id} has no asset {key!r} (band {band})", path)
        href = asset.get_absolute_href() or asset.href
        gain, offset = (1.0, 0.0) if band.upper() in _UNSCALED else _scaling(asset.extra_fields)
        yield ProductFile(band, gdal_href(href), gain, 0.0 if offset_applied else offset)


def _scaling(fields: Mapping[str, Any]) -> tuple[float, float]:
    """``(gain, offset)`` giving reflectance x 10000 from DN, from ``raster:bands[0]``.

    Without a scale, DN already are reflectance x 10000 (an offset is then in DN).
    """
    bands = fields.get("raster:bands") or [{}]
    first = bands[0] if isinstance(bands[0], Mapping) else {}
    scale, offset = first.get("scale"), float(first.get("offset") or 0.0)
    if scale is None:
        return 1.0, offset
    return _tidy(float(scale) * REFLECTANCE_SCALE), _tidy(offset * REFLECTANCE_SCALE)


def _item_date(item: pystac.Item, path: Path) -> dt.date:
    moment = item.datetime
    if moment is None:
        start = item.properties.get("start_datetime")
        if not start:
            raise InputDataError(f"STAC item {item.id} has no datetime", path)
        moment = dt.datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    return moment.date()


def _satellite(item: pystac.Item) -> str:
    """``A`` for ``sentinel-2a`` (or an id starting ``S2A_``), else the platform as is."""
    platform = str(item.properties.get("platform") or "")
    if platform.lower().startswith("sentinel-2") and len(platform) == len("sentinel-2") + 1:
        return platform[-1].upper()
    match = _SATELLITE_IN_ID.match(item.id)
    return match["letter"].upper() if match else platform


def _version(item: pystac.Item) -> tuple[int, ...]:
    """``(processing baseline digits, sequence number)``: ``05.00``, ``…_1_L2A`` → ``(500, 1)``."""
    digits = "".join(
        c for c in str(item.properties.get("s2:processing_baseline", "")) if c.isdigit()
    )
    sequence = _SEQUENCE.search(item.id)
    return (int(digits) if digits else 0, int(sequence["n"]) if sequence else 0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _tidy(value: float) -> float:
    """``0.0001 x 10000`` is 1, not 0.9999999999999999 (so that unscaled reads stay copies)."""
    return round(value, 9)
