"""Operations views of domain data (issue #16 item 5), at the top (orchestration) layer: it may read
metrics, scorecards and webhooks. It registers the nightly-run readiness check and the scrape-time
Prometheus collectors with cs_platform.observability, which knows no domain app."""
