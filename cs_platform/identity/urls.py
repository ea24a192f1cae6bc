from django.urls import path

from cs_platform.identity import views

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/verify/", views.login_verify, name="login_verify"),
    path("logout/", views.logout_view, name="logout"),
    path("reauth/", views.reauth_view, name="reauth"),
    path("password-reset/", views.password_reset_request_view, name="password_reset"),
    path("password-reset/sent/", views.password_reset_sent, name="password_reset_sent"),
    path("password-reset/done/", views.password_reset_done, name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", views.PasswordResetConfirm.as_view(), name="password_reset_confirm"),
    path("account/security/", views.account_security, name="account_security"),
    path("account/password/", views.password_change_view, name="password_change"),
    path("account/security/mfa/", views.mfa_enroll, name="mfa_enroll"),
    path("account/security/mfa/remove/", views.mfa_remove, name="mfa_remove"),
    path("account/security/recovery-codes/", views.mfa_recovery_codes, name="mfa_recovery_codes"),
    path("settings/security/", views.security_settings, name="security_settings"),
    # Before the admin's own URLs: the admin's password-only login form is never served.
    path("admin/login/", views.admin_login, name="admin_login"),
]
