"""Query-string handling shared by list pages: whitelisted filters, sort keys and pagination, so a
hand-edited URL can never sort or filter on an arbitrary column."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet, Window
from django.http import QueryDict

DEFAULT_PAGE_SIZE = 50
PAGE_SIZES = (25, 50, 100)


@dataclass
class ListParams:
    filters: dict[str, str] = field(default_factory=dict)
    sort: str = ""
    descending: bool = False
    page: str = "1"
    page_size: int = DEFAULT_PAGE_SIZE
    query: QueryDict | None = None

    def order_by(self, columns: Mapping[str, tuple[str, ...]]) -> list[str]:
        return [f"-{c}" if self.descending else c for c in columns[self.sort]]

    def querystring(self, **overrides: str) -> str:
        """The current query string with some keys replaced (or removed when the value is ''),
        for sort headers and pager links that keep the filters."""
        params = self.query.copy() if self.query is not None else QueryDict(mutable=True)
        for key, value in overrides.items():
            if value == "":
                params.pop(key, None)
            else:
                params[key] = value
        return params.urlencode()


def list_params(
    query: QueryDict, *, filters: Mapping[str, set[str] | None], sorts: Mapping[str, tuple[str, ...]], default_sort: str
) -> ListParams:
    """Read filters (a set of allowed values, or None for free text), `sort` (a key of `sorts`, '-'
    prefix for descending), `page` and `size`. Unknown values are dropped, not errors: a stale
    bookmark still opens the list."""
    chosen: dict[str, str] = {}
    for name, allowed in filters.items():
        value = (query.get(name) or "").strip()
        if value and (allowed is None or value in allowed):
            chosen[name] = value[:200]
    sort = query.get("sort") or default_sort
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in sorts:
        descending = default_sort.startswith("-")
        key = default_sort.lstrip("-")
    try:
        size = int(query.get("size") or DEFAULT_PAGE_SIZE)
    except ValueError:
        size = DEFAULT_PAGE_SIZE
    clean = query.copy()
    clean.pop("page", None)
    return ListParams(
        filters=chosen,
        sort=key,
        descending=descending,
        page=query.get("page") or "1",
        page_size=size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE,
        query=clean,
    )


def paginate(items, params: ListParams) -> Page:
    return Paginator(items, params.page_size).get_page(params.page)


def first_with_total(rows: QuerySet, order: tuple, *, limit: int) -> tuple[list, int]:
    """The first `limit` of `rows` in `order` (fields, annotations or order expressions; end it with the
    pk so ties keep their place) and how many `rows` there are, in two queries: the ids with a window
    count, read without the joins, then those rows with whatever `rows` selects and annotates. Joining
    before the LIMIT would join every matching row of a big tenant to keep a handful."""
    top = list(rows.annotate(first_total=Window(Count("pk"))).order_by(*order).values_list("pk", "first_total")[:limit])
    if not top:
        return [], 0
    by_pk = rows.in_bulk([pk for pk, _ in top])
    return [by_pk[pk] for pk, _ in top], top[0][1]
