"""Template tags for list pages: sortable headers and pager links that keep the current filters."""

from __future__ import annotations

from django import template

from compliance.models import ObligationStatus

register = template.Library()


@register.inclusion_tag("includes/sort_header.html")
def sort_header(params, key: str, label: str, num: bool = False) -> dict:
    active = params.sort == key
    # Clicking the active column flips it; another column starts ascending. Page resets to 1.
    next_sort = key if not active or params.descending else f"-{key}"
    return {
        "label": label,
        "num": num,
        "active": active,
        "descending": params.descending,
        "href": "?" + params.querystring(sort=next_sort),
    }


@register.simple_tag
def page_href(params, number: int) -> str:
    return "?" + params.querystring(page=str(number))


@register.filter
def status_label(value: str | None) -> str:
    """An obligation status code as its label ("not_started" -> "Not started")."""

    return dict(ObligationStatus.choices).get(value or "", value or "")
