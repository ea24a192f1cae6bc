"""REST API v1 for the audit trail: a read-only, cursor-paginated list (a client syncs forward by seq),
one event by id, and a streamed, independently verifiable export as CSV or JSON (with the signed
checkpoints and public keys in JSON; api/audit_checkpoints.py lists checkpoints for CSV users). Every read and
export is itself recorded in the trail."""

from __future__ import annotations

import base64
import csv
import datetime
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from api.errors import ErrorSerializer, error_body
from api.filters import IdFilter, MomentFilter
from api.models import ApiToken
from api.permissions import EVERY_ACTION
from api.schema import response_example
from api.viewsets import TenantViewSet
from cs_platform.audit import signing
from cs_platform.audit.chain import canonical, compute_hash, event_payload
from cs_platform.audit.models import AuditCheckpoint, AuditEvent
from cs_platform.audit.selectors import (
    audit_checkpoints,
    audit_checkpoints_in_batches,
    audit_events,
    audit_events_in_batches,
    audit_export_bounds,
)
from cs_platform.audit.services import audit_trail_export_record, audit_trail_read_record
from cs_platform.identity.reauth import require_recent_auth
from cs_platform.spreadsheet import spreadsheet_safe
from cs_platform.tenancy.policy import Capability

# Session users read the trail with Capability.VIEW_AUDIT_TRAIL (cs_platform.tenancy.policy), every action
# of both audit viewsets; tokens with the audit:read scope.
READ_TRAIL = {EVERY_ACTION: Capability.VIEW_AUDIT_TRAIL}
EXPORT_FORMATS = ("csv", "json")
# Rows fetched per query while streaming an export; memory stays constant whatever the trail's length.
EXPORT_BATCH_SIZE = 2000
# The export's columns: exactly the fields the hash covers, then the hash itself.
EXPORT_FIELDS = (
    "seq",
    "created_at",
    "tenant",
    "actor",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "prev_hash",
    "hash",
)

VERIFICATION_RULE = """\
**How to verify an export.** Every exported event (a JSON object in `events`, or a CSV row) holds
exactly the fields its hash covers plus `hash`:
`tenant, seq, actor, actor_label, action, object_type, object_id, before, after, created_at, prev_hash`.

1. Build the payload: the event's fields **without `hash`**, with JSON types: `tenant` and `seq` are
   integers; `actor` is an integer or `null` (system actions); `actor_label`, `action`, `object_type`,
   `object_id` (possibly empty), `created_at`, `prev_hash` are strings, taken verbatim (`created_at` is
   already canonical: UTC, microseconds, `+00:00`, e.g. `2026-11-23T17:19:28.123456+00:00`); `before` and
   `after` are JSON values (objects or `null`).
   From CSV: first, a cell that starts with `'` had one `'` added in front so that spreadsheets read it as
   text, not as a formula (cells starting with `=`, `+`, `-`, `@`, tab, carriage return or NUL, and
   cells starting with `'` itself): remove that one leading `'`. Then `tenant`, `seq` -> integers; empty
   `actor` -> `null`, else integer; `before`/`after` are JSON text -> parse them; every other column is
   the string as written.
2. Serialise the payload canonically: keys sorted, no whitespace (`,` and `:` separators), non-ASCII
   characters as literal UTF-8 (not `\\u` escapes), numbers as in the export; in Python
   `json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
3. `hash` must equal the lowercase hex SHA-256 of those UTF-8 bytes.
4. Chain links: events are in ascending `seq`. Each event's `prev_hash` must equal the previous event's
   `hash`, and its `seq` must be the previous `seq` + 1. The tenant's first event (seq 1) has
   `prev_hash` = 64 zeros.

**Segments.** An export filtered only by a window (`seq_after`/`seq_before`, `created_after`/
`created_before`) is a contiguous segment of the chain: verify it from its first event's `prev_hash`
(step 4 starting there instead of 64 zeros); to tie it to a previous export, check that this `prev_hash`
is the last `hash` you hold. Exports filtered by actor, action or object are not contiguous: every
event's own hash still verifies (steps 1-3), and step 4 applies wherever two events have consecutive seqs.

**Signed checkpoints** (what recomputed hashes cannot fake). At least hourly and after each nightly run
the platform signs each tenant's chain head with an Ed25519 key held outside its database. A checkpoint
(JSON `checkpoints`, or `GET /api/v1/audit-checkpoints/` for CSV users) holds `type, tenant, number, seq,
event_hash, created_at, reason, prev_digest, key_id` and `signature`.

5. Signed bytes: the checkpoint **without `signature`**, serialised canonically as in step 2. Its digest
   is the lowercase hex SHA-256 of those bytes.
6. Key: `key_id` names the public key (lowercase hex SHA-256 of its 32 raw bytes). Use the key your
   vendor published (the export's `public_keys` carry it too, but a key read from the file you are
   checking proves only that the file is consistent). `signature` (hex) must verify with it (Ed25519).
7. Checkpoint chain: `number` rises by 1; each `prev_digest` is the previous checkpoint's digest (64
   zeros for number 1); `seq` never goes down.
8. Against the events: the event with the checkpoint's `seq` must have `hash` = `event_hash` (a
   rewritten chain with recomputed hashes fails here); a checkpoint at the seq just before a window's
   first event must equal that event's `prev_hash`. In a JSON export without an upper bound (`seq_before`,
   `created_before`) or a selection (actor, action, object), every checkpoint's `seq` must be at most the
   last exported seq: a checkpoint beyond it means the newest events were removed.

`scripts/verify_audit_export.py` does all of this for a JSON export (or a CSV export with `--checkpoints`).
"""


class AuditEventFilter(filters.FilterSet):
    created_after = MomentFilter(
        field_name="created_at",
        lookup_expr="gte",
        help_text="Events recorded at or after this time (ISO 8601; give an offset, e.g. 2026-11-01T00:00:00Z).",
    )
    created_before = MomentFilter(
        field_name="created_at", lookup_expr="lt", help_text="Events recorded strictly before this time (ISO 8601)."
    )
    seq_after = IdFilter(
        field_name="seq", lookup_expr="gt", help_text="Events with seq greater than this (the last seq you hold)."
    )
    seq_before = IdFilter(field_name="seq", lookup_expr="lt", help_text="Events with seq less than this.")
    object_type = filters.CharFilter(help_text="The changed object's type, e.g. accounts.clientaccount.")
    object_id = filters.CharFilter(help_text="The changed object's id (with object_type).")
    actor = IdFilter(field_name="actor", help_text="The acting user's id.")
    actor_label = filters.CharFilter(lookup_expr="iexact", help_text="The acting user's email (case-insensitive).")
    action = filters.CharFilter(help_text="The action, e.g. account.create.")

    class Meta:
        model = AuditEvent
        fields: list[str] = []


def _filter_parameters() -> list[OpenApiParameter]:
    """The list's filters, documented on the export too (drf-spectacular adds them to list views only)."""
    types = {IdFilter: OpenApiTypes.INT, MomentFilter: OpenApiTypes.DATETIME}
    return [
        OpenApiParameter(
            name, types.get(type(f), OpenApiTypes.STR), OpenApiParameter.QUERY, description=f.extra.get("help_text", "")
        )
        for name, f in AuditEventFilter.base_filters.items()
    ]


# --- Examples ----------------------------------------------------------------------------------------------
# Two consecutive events of tenant 3 (northwind): CSM 7 records a KPI value for account 42 (KPI 2,
# risk_reduction), then resolves its incident 3318, as metrics.services records them (before/after are
# model_snapshot's). Their hashes are computed here as audit_record computes them, and the second's
# prev_hash is the first's hash, so the examples verify by the export's rule.
_TENANT_ID, _ACTOR_ID, _ACTOR_LABEL = 3, 7, "jordan.lee@northwind.example"
_INCIDENT = {
    "id": 3318,
    "tenant_id": _TENANT_ID,
    "account_id": 42,
    "title": "Payment file rejected",
    "severity": "sev2",
    "opened_at": "2026-11-20T08:00:00Z",
    "resolved_at": None,
    "escalated": False,
    "external_ref": "JIRA-1234",
}
_EXAMPLE_EVENTS = [
    {
        "id": 60232,
        "seq": 1841,
        "action": "kpi_measurement.create",
        "object_type": "metrics.kpimeasurement",
        "object_id": "8876",
        "before": None,
        "after": {
            "id": 8876,
            "tenant_id": _TENANT_ID,
            "account_id": 42,
            "kpi_id": 2,
            "measured_on": "2026-11-20",
            "value": "28.5000",
            "source": "api",
            "recorded_at": "2026-11-20T11:29:40Z",
        },
        "created_at": datetime.datetime(2026, 11, 20, 11, 29, 40, 120518, tzinfo=datetime.UTC),
    },
    {
        "id": 60233,
        "seq": 1842,
        "action": "incident.resolve",
        "object_type": "metrics.incident",
        "object_id": "3318",
        "before": _INCIDENT,
        "after": {**_INCIDENT, "resolved_at": "2026-11-20T11:30:00Z"},
        "created_at": datetime.datetime(2026, 11, 20, 11, 30, 2, 418305, tzinfo=datetime.UTC),
    },
]


def _chained(events: list[dict[str, Any]], prev_hash: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(list/retrieve row, export row) of each example event, hashed and chained from prev_hash."""
    chained = []
    for event in events:
        payload = event_payload(
            tenant_id=_TENANT_ID,
            seq=event["seq"],
            actor_id=_ACTOR_ID,
            actor_label=_ACTOR_LABEL,
            action=event["action"],
            object_type=event["object_type"],
            object_id=event["object_id"],
            before=event["before"],
            after=event["after"],
            created_at=event["created_at"],
            prev_hash=prev_hash,
        )
        export_row = {**payload, "hash": compute_hash(payload)}
        # The serializer's fields are the export's, with the row id in place of the tenant.
        api_row = {"id": event["id"], **{field: export_row[field] for field in EXPORT_FIELDS if field != "tenant"}}
        chained.append((api_row, export_row))
        prev_hash = export_row["hash"]
    return chained


# The hash of event 1840, which the first example event follows.
_EXAMPLE_PREV_HASH = "9b74c9897bac770ffc029102a200c5de1d1b3e1a4e8d9c4b7f0e6a2d5c3b1f08"
_EXAMPLE_CHAIN = _chained(_EXAMPLE_EVENTS, _EXAMPLE_PREV_HASH)

# Two consecutive hourly checkpoints of the same tenant: 26 signed the head at event 1840 (the hash the first
# example event follows), 27 at event 1842. Signed here with a documentation key (its private half is this
# seed, so it proves nothing; the examples only show real, verifiable values).
_EXAMPLE_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"cs-platform OpenAPI example key").digest())
_EXAMPLE_PUBLIC_KEY = signing.PublicKey(
    key_id=signing.key_id_of(_EXAMPLE_KEY.public_key().public_bytes_raw()),
    public_key=base64.b64encode(_EXAMPLE_KEY.public_key().public_bytes_raw()).decode("ascii"),
    signing=True,
)


def _example_checkpoints() -> list[dict[str, Any]]:
    rows, prev_digest = [], "5f0c2b7e9d41a3c86e17b2d04f9a8c3e61d7b5a2c9e04f18b3d6a7c2e5f19b40"  # digest of 25
    heads = [(26, 1840, _EXAMPLE_PREV_HASH, datetime.datetime(2026, 11, 20, 11, 0, 0, 412907, tzinfo=datetime.UTC))]
    heads.append((27, 1842, _EXAMPLE_CHAIN[1][1]["hash"], heads[0][3] + datetime.timedelta(hours=1, microseconds=1)))
    for number, seq, event_hash, created_at in heads:
        payload = signing.checkpoint_payload(
            tenant_id=_TENANT_ID,
            number=number,
            seq=seq,
            event_hash=event_hash,
            created_at=created_at,
            reason="hourly",
            prev_digest=prev_digest,
            key_id=_EXAMPLE_PUBLIC_KEY.key_id,
        )
        rows.append({**payload, "signature": signing.sign(payload, _EXAMPLE_KEY)})
        prev_digest = signing.digest(payload)
    return rows


EXAMPLE_CHECKPOINTS = _example_checkpoints()
EXAMPLE_PUBLIC_KEYS = [_EXAMPLE_PUBLIC_KEY.as_dict()]


@extend_schema_field(OpenApiTypes.DATETIME)
class CanonicalDateTimeField(serializers.Field):
    """The time exactly as the hash covers it (UTC, microseconds, +00:00), not DRF's local-time form."""

    def to_representation(self, value: datetime.datetime) -> str:
        return value.astimezone(datetime.UTC).isoformat(timespec="microseconds")


@response_example("an incident resolved", _EXAMPLE_CHAIN[1][0])
class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.IntegerField(
        source="actor_id", allow_null=True, read_only=True, help_text="The acting user's id; null for the system."
    )
    created_at = CanonicalDateTimeField(read_only=True)
    before = serializers.JSONField(read_only=True, allow_null=True, help_text="The object's fields before the write.")
    after = serializers.JSONField(read_only=True, allow_null=True, help_text="The object's fields after the write.")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "seq",
            "created_at",
            "actor",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


def reader(request) -> dict[str, Any]:
    """How the trail was read, for its audit.read/audit.export event: which token, or a browser session."""
    if isinstance(request.auth, ApiToken):
        return {"via": "api_token", "token_id": request.auth.pk}
    return {"via": "session"}


def query_of(request, filterset_class, *, paged: bool = True) -> dict[str, str]:
    """The query parameters that shaped the answer (filters, and for a page its ordering and size), as the
    caller sent them; the filterset has already refused bad ones."""
    known = {*filterset_class.base_filters, *(("ordering", "page_size") if paged else ())}
    return {key: value for key, value in request.query_params.items() if key in known}


def _cleaned_filters(request) -> dict[str, Any]:
    """The filters' values as the filterset parsed them (already validated by the list's filtering)."""
    form = AuditEventFilter(data=request.query_params, queryset=AuditEvent._plain.none()).form
    return form.cleaned_data if form.is_valid() else {}


class ExportContentNegotiation(DefaultContentNegotiation):
    """The export writes its own CSV or JSON body and DRF renders only its JSON errors. Default
    negotiation would read `?format=csv` as a renderer override (URL_FORMAT_OVERRIDE) and answer 404,
    and `Accept: text/csv` as a media type no renderer offers (406): neither applies here."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class _Echo:
    """csv.writer writes into this and gets the line back, so rows can be yielded one by one."""

    def write(self, value: str) -> str:
        return value


def _export_rows(events: Iterable[AuditEvent]) -> Iterator[dict[str, Any]]:
    for event in events:
        # The same payload the writer hashed (chain.event_payload), so the export cannot drift from it.
        row = event_payload(
            tenant_id=event.tenant_id,
            seq=event.seq,
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            before=event.before,
            after=event.after,
            created_at=event.created_at,
            prev_hash=event.prev_hash,
        )
        row["hash"] = event.hash
        yield row


def _csv_stream(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for row in rows:
        cells = []
        for field in EXPORT_FIELDS:
            value = row[field]
            if field in ("before", "after"):
                value = canonical(value)  # JSON text; "null" when absent
            elif value is None:
                value = ""  # actor of system events
            cells.append(value)
        # A cell a spreadsheet would run as a formula gets a leading ' (the verification rule removes it).
        yield writer.writerow([spreadsheet_safe(cell) for cell in cells])


def _in_chunks(pieces: Iterable[str], size: int = 64 * 1024) -> Iterator[bytes]:
    """Join small pieces into ~64 KB writes: one socket write per row would dominate a 1M-row export."""
    buffer: list[str] = []
    length = 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer).encode("utf-8")
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer).encode("utf-8")


def _json_stream(
    rows: Iterable[dict[str, Any]],
    header: dict[str, Any],
    checkpoints: Iterable[dict[str, Any]] = (),
    public_keys: list[dict[str, Any]] = (),
) -> Iterator[str]:
    """One JSON object, written piecewise: `events`, then the `checkpoints` and the `public_keys` that verify
    them, come after the header fields and `count` last, so a download cut short is invalid JSON rather than a
    shorter trail that still parses."""
    yield json.dumps(header, ensure_ascii=False)[:-1] + ',"events":['
    count = 0
    for row in rows:
        yield ("," if count else "") + json.dumps(row, ensure_ascii=False)
        count += 1
    yield '],"checkpoints":['
    for index, checkpoint in enumerate(checkpoints):
        yield ("," if index else "") + json.dumps(checkpoint, ensure_ascii=False)
    yield '],"public_keys":' + json.dumps(list(public_keys)) + f',"count":{count}}}'


def checkpoint_row(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """A checkpoint as exported and listed: its signed payload, then its signature."""
    return {**signing.payload_of(checkpoint), "signature": checkpoint.signature}


def _json_header(
    tenant_slug: str, exported_at: datetime.datetime, filters: dict[str, str], through_seq: int, through_checkpoint: int
) -> dict[str, Any]:
    """The JSON export's fields before `events` (shared with its example, which must not drift from it)."""
    return {
        "tenant_slug": tenant_slug,
        "exported_at": exported_at.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
        "filters": filters,
        # The range was fixed before the export's own audit.export event was recorded (the next export has it).
        "through_seq": through_seq,
        "through_checkpoint": through_checkpoint,
        "verification": (
            "hash = lowercase hex SHA-256 of the UTF-8 canonical JSON (sorted keys, separators ',' and "
            "':', non-ASCII unescaped) of the event without 'hash'; each prev_hash equals the previous "
            "event's hash and seq increases by 1; seq 1 has prev_hash of 64 zeros; a window export "
            "verifies from its first event's prev_hash. Each checkpoint's signature (Ed25519, hex) verifies "
            "over the canonical JSON of the checkpoint without 'signature' with the public key named by "
            "key_id, and the event at its seq has its event_hash. Full rule: /api/docs/, audit-events export; "
            "scripts/verify_audit_export.py does it."
        ),
    }


# The export examples are written by the export's own writers, so their columns and layout are the real ones.
_EXPORT_ROWS = [export_row for _, export_row in _EXAMPLE_CHAIN]
_EXPORT_EXAMPLES = [
    OpenApiExample(
        "events 1841-1842 (seq_after=1840)",
        value="".join(_csv_stream(_EXPORT_ROWS)),
        media_type="text/csv",
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "events 1841-1842 (seq_after=1840)",
        value=json.loads(
            "".join(
                _json_stream(
                    _EXPORT_ROWS,
                    _json_header(
                        "northwind",
                        datetime.datetime(2026, 11, 23, 9, 12, 5, 331907, tzinfo=datetime.UTC),
                        {"seq_after": "1840"},
                        1842,
                        27,
                    ),
                    EXAMPLE_CHECKPOINTS,
                    EXAMPLE_PUBLIC_KEYS,
                )
            )
        ),
        media_type="application/json",
        response_only=True,
        status_codes=["200"],
    ),
]


@extend_schema_view(
    list=extend_schema(summary="List audit events (ascending seq; follow next to sync forward)"),
    retrieve=extend_schema(
        summary="One audit event",
        parameters=[OpenApiParameter("event_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
    ),
)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The tenant's append-only, hash-chained audit trail: one event per write (who, what, before and
    after, when), in seq order (1, 2, 3...), each event's `prev_hash` being the previous event's `hash`.

    Readers: tokens with the `audit:read` scope, and the tenant's admins and compliance officers when
    signed in (executives, managers, CSMs and viewers get 403). The trail covers the whole tenant, not one
    book. Sync forward by following `next`, or by `seq_after` = the last seq you hold. `created_at` is
    given exactly as the hash covers it; use the export to verify hashes.

    Every answer is itself recorded: an `audit.read` event (the filters, how many events and which seqs,
    session or token) after the page was read, so a page never holds its own read and the next one does."""

    scope_family = "audit"
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    lookup_url_kwarg = "event_id"
    ordering = ["seq"]
    ordering_fields = ["seq"]

    capabilities = READ_TRAIL

    queryset = AuditEvent._plain.none()  # the schema's; requests read visible_queryset()

    def visible_queryset(self):
        return audit_events()

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        seqs = [row["seq"] for row in response.data["results"]]
        audit_trail_read_record(
            tenant=self.tenant,
            actor=request.user,
            object_type="audit.auditevent",
            via=reader(request),
            filters=query_of(request, AuditEventFilter),
            returned=len(seqs),
            first_last=(min(seqs), max(seqs)) if seqs else None,
        )
        return response

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        audit_trail_read_record(
            tenant=self.tenant,
            actor=request.user,
            object_type="audit.auditevent",
            object_id=response.data["id"],
            via=reader(request),
            returned=1,
            first_last=(response.data["seq"], response.data["seq"]),
        )
        return response

    @extend_schema(
        operation_id="audit_events_export",
        summary="Export the audit trail (CSV or JSON), streamed and verifiable",
        description=(
            "The filtered trail in ascending seq order, as a file download "
            "(`Content-Disposition: attachment; filename=audit-<tenant slug>-<UTC date>.<csv|json>`), streamed "
            "in constant memory however long it is. Takes the same filters as the list; no pagination and no "
            "`ordering`.\n\n"
            "The range is fixed when the request arrives: events up to the head at that moment (`through_seq`) "
            "and checkpoints up to the newest then (`through_checkpoint`). Then the export is recorded as an "
            "`audit.export` event (format, filters, that range, session or token) before the first byte is sent, "
            "so a file never holds its own export event and the next export does.\n\n"
            "`format=json` answers one object: `tenant_slug`, `exported_at`, `filters`, `through_seq`, "
            "`through_checkpoint`, `verification` (this rule, in short), then `events` (the rows), `checkpoints` "
            "(the signed checkpoints up to `through_checkpoint`; with `seq_after`, those at or after that seq), "
            "`public_keys` (`key_id`, `algorithm`, `public_key` as base64 of the 32 raw bytes, `signing`) and "
            "finally `count` (of events); a cut-off download is not valid JSON. "
            "`format=csv` answers a header row `" + ",".join(EXPORT_FIELDS) + "` and one row per event, "
            "`before`/`after` as compact JSON text. A cell a spreadsheet would run as a formula (starting with "
            "`=`, `+`, `-`, `@`, tab, carriage return or NUL), and a cell starting with `'`, is written with one "
            "`'` in front (OWASP's neutralisation); remove it before hashing, as step 1 says. JSON values are "
            "verbatim.\n\n" + VERIFICATION_RULE
        ),
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=True,
                enum=[*EXPORT_FORMATS],
                description="The file format. (On this path `format` names the file; it is not DRF's renderer "
                "override.)",
            ),
            *_filter_parameters(),
        ],
        examples=_EXPORT_EXAMPLES,
        responses={
            400: OpenApiResponse(ErrorSerializer, description="format missing or unknown, or a filter is not valid."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV file, one row per event."),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="JSON object with `events`, `checkpoints` and `public_keys` (see the verification rule).",
            ),
        },
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="export",
        url_name="export",
        pagination_class=None,
        content_negotiation_class=ExportContentNegotiation,
    )
    def export(self, request):
        require_recent_auth(request)  # a browser session re-authenticates first; a token is its own credential
        file_format = request.query_params.get("format", "")
        if file_format not in EXPORT_FORMATS:
            message = f"Choose format={' or format='.join(EXPORT_FORMATS)}."
            return Response(
                error_body(400, "invalid", message, [{"field": "format", "code": "invalid", "message": message}]),
                status=400,
            )
        # Validates the filters now (a bad one is a 400 before any byte is streamed).
        queryset = self.filter_queryset(self.get_queryset())
        tenant = self.tenant
        now = timezone.now()
        filters = query_of(request, AuditEventFilter, paged=False)
        through_checkpoint, through_seq = audit_export_bounds()
        audit_trail_export_record(
            tenant=tenant,
            actor=request.user,
            file_format=file_format,
            filters=filters,
            through_seq=through_seq,
            through_checkpoint=through_checkpoint,
            via=reader(request),
        )
        events = queryset.filter(seq__lte=through_seq)
        rows = _export_rows(audit_events_in_batches(events, tenant_id=tenant.pk, batch_size=EXPORT_BATCH_SIZE))
        if file_format == "csv":
            stream, content_type = _csv_stream(rows), "text/csv; charset=utf-8"
        else:
            header = _json_header(tenant.slug, now, filters, through_seq, through_checkpoint)
            checkpoints = audit_checkpoints().filter(number__lte=through_checkpoint)
            seq_after = _cleaned_filters(request).get("seq_after")
            if seq_after is not None:
                # Those that vouch for an exported event or for the hash the first one follows.
                checkpoints = checkpoints.filter(seq__gte=seq_after)
            checkpoint_rows = (
                checkpoint_row(checkpoint)
                for checkpoint in audit_checkpoints_in_batches(
                    checkpoints, tenant_id=tenant.pk, batch_size=EXPORT_BATCH_SIZE
                )
            )
            public_keys = [key.as_dict() for key in signing.public_keys()]
            stream, content_type = _json_stream(rows, header, checkpoint_rows, public_keys), "application/json"
        response = StreamingHttpResponse(_in_chunks(stream), content_type=content_type)
        filename = f"audit-{tenant.slug}-{now.astimezone(datetime.UTC):%Y-%m-%d}.{file_format}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response


def register(router) -> None:
    router.register("audit-events", AuditEventViewSet, basename="api-audit-event")


urlpatterns: list = []
