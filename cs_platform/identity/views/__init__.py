"""The identity pages, by concern: login.py (the password and code steps, logout, re-authentication),
passwords.py (reset by email, change) and mfa.py (enrolment, recovery codes, the tenant's setting)."""
