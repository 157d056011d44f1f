from django.db import migrations

from scelle.platform.tenders.models import DEFINITIVE
from scelle.platform.triggers import forbid_updates


class Migration(migrations.Migration):
    dependencies = [("tenders", "0001_initial")]
    operations = [forbid_updates("tenders_assignedkeypair", DEFINITIVE)]
