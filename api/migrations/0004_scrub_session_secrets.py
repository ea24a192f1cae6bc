"""Sessions written before the one-time secrets left the session (issue #15) may still hold
a just-created API token's plaintext under "api_token_plaintext": it waited there for the next page load, which may never have come.
Remove that entry from every row of django_session, keeping the rest of each session.

Rows the current SECRET_KEY (or SECRET_KEY_FALLBACKS) cannot read are left alone: the application
cannot read them either, and `manage.py clearsessions` removes them once they expire."""

from django.db import migrations

KEY = "api_token_plaintext"


def scrub(apps, schema_editor):
    from django.contrib.sessions.backends.db import SessionStore

    session_model = apps.get_model("sessions", "Session")
    store = SessionStore()
    rows = session_model.objects.using(schema_editor.connection.alias).only("session_key", "session_data")
    for row in rows.iterator(chunk_size=1000):
        data = store.decode(row.session_data)
        if KEY in data:
            del data[KEY]
            rows.filter(pk=row.pk).update(session_data=store.encode(data))


class Migration(migrations.Migration):
    dependencies = [("api", "0003_idempotency_scoped_to_credential"), ("sessions", "0001_initial")]

    operations = [migrations.RunPython(scrub, migrations.RunPython.noop, elidable=True)]
