"""Identity: login (django-axes throttling), logout, password reset and change, MFA (django-otp),
re-authentication ("sudo mode") and session lifetimes. Its services record every authentication event
in the audit chain of each tenant the person belongs to."""
