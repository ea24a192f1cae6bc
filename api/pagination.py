"""Cursor pagination for every collection: stable under concurrent inserts and as fast on the last page
as on the first, which offset pages on a 100k-row table are not."""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    page_size_query_param = "page_size"
    # Views set `ordering`; this is the fallback, newest first, unique.
    ordering = "-id"

    def get_page_size(self, request):
        self.page_size = settings.API_PAGE_SIZE
        self.max_page_size = settings.API_MAX_PAGE_SIZE
        return super().get_page_size(request)

    def decode_cursor(self, request):
        # DRF answers a tampered or stale cursor with 404; it is a bad query parameter, so a 400 on
        # `cursor` (the list still exists).
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError(
                {self.cursor_query_param: ["Invalid cursor: follow the next or previous link."]}
            )
