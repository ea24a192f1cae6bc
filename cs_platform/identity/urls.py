from django.urls import path

from cs_platform.identity.views import login, mfa, passwords

urlpatterns = [
    path("login/", login.login_view, name="login"),
    path("login/verify/", login.login_verify, name="login_verify"),
    path("logout/", login.logout_view, name="logout"),
    path("reauth/", login.reauth_view, name="reauth"),
    path("password-reset/", passwords.password_reset_request_view, name="password_reset"),
    path("password-reset/sent/", passwords.password_reset_sent, name="password_reset_sent"),
    path("password-reset/done/", passwords.password_reset_done, name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", passwords.PasswordResetConfirm.as_view(), name="password_reset_confirm"),
    path("account/security/", mfa.account_security, name="account_security"),
    path("account/password/", passwords.password_change_view, name="password_change"),
    path("account/security/mfa/", mfa.mfa_enroll, name="mfa_enroll"),
    path("account/security/mfa/remove/", mfa.mfa_remove, name="mfa_remove"),
    path("account/security/recovery-codes/", mfa.mfa_recovery_codes, name="mfa_recovery_codes"),
    path("settings/security/", mfa.security_settings, name="security_settings"),
    # Before the admin's own URLs: the admin's password-only login form is never served.
    path("admin/login/", login.admin_login, name="admin_login"),
]
