from django.db import models


class Heartbeat(models.Model):
    """The last time a periodic process proved it is alive, by name ("beat": the tick task). Not
    tenant-owned: it describes the deployment, not a tenant's data."""

    name = models.CharField(max_length=40, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
