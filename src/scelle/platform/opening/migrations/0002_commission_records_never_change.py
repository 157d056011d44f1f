from django.db import migrations

from scelle.platform.opening.models import KEPT
from scelle.platform.triggers import forbid_updates


class Migration(migrations.Migration):
    dependencies = [("opening", "0001_commission_opening")]
    operations = [
        forbid_updates("opening_commissionopening", KEPT),
        forbid_updates("opening_participation", KEPT),
        forbid_updates("opening_relayedshare", KEPT),
    ]
