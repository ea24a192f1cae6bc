from django.conf import settings
from django.core.management.base import BaseCommand

from cs_platform.audit import signing


class Command(BaseCommand):
    help = (
        "Make a new Ed25519 key for signing audit checkpoints: prints the private key to set as AUDIT_SIGNING_KEY "
        "and its public key and id to give clients. --show prints the public keys of the configured keys instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--show", action="store_true", help="Print the configured keys' public keys (nothing secret)."
        )

    def handle(self, *args, show: bool, **options):
        if show:
            for key in signing.public_keys():
                role = "signing (AUDIT_SIGNING_KEY)" if key.signing else "verify only (AUDIT_VERIFY_PUBLIC_KEYS)"
                if signing.is_development_key(key.key_id):
                    role += ", the public DEVELOPMENT key: anyone can sign with it"
                self.stdout.write(f"{key.key_id}  {signing.ALGORITHM}  {key.public_key}  {role}")
            return
        private, public = signing.generate()
        previous = signing.signing_key()[1]
        self.stdout.write(
            "New audit checkpoint signing key (Ed25519). Keep the first line secret, outside the database and its\n"
            "backups (a secrets manager, the deployment's environment); publish the public key to clients.\n\n"
            f"AUDIT_SIGNING_KEY={private}\n\n"
            f"Public key (base64): {public.public_key}\n"
            f"Key id (SHA-256 of the raw public key): {public.key_id}\n"
        )
        if not settings.DEBUG or not signing.is_development_key(previous.key_id):
            self.stdout.write(
                "\nRotating? Keep checkpoints signed by the current key verifiable: add its public key to\n"
                f"AUDIT_VERIFY_PUBLIC_KEYS={','.join([*settings.AUDIT_VERIFY_PUBLIC_KEYS, previous.public_key])}\n"
            )
