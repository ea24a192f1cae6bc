"""Operations plumbing with no domain knowledge (issue #16 items 5 and 6): liveness and readiness checks,
Prometheus metrics, structured logs and request ids. Upper layers add their own readiness checks and
metric collectors through the registries here (see the `monitoring` app); nothing here imports them."""
