"""Re-encrypt every stored credential under the newest key of XCON_CREDENTIAL_KEYS."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from exchanges.models import ApiCredential


class Command(BaseCommand):
    help = "Re-encrypt all API credentials under the newest XCON_CREDENTIAL_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            for credential in ApiCredential.objects.select_for_update():
                credential.rotate()
                credential.save(
                    update_fields=["api_key_encrypted", "secret_encrypted", "passphrase_encrypted"]
                )
                count += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} credential(s)."))
