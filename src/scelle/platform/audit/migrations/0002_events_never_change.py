from django.db import migrations

from scelle.platform.audit.models import APPEND_ONLY
from scelle.platform.triggers import forbid_updates


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [forbid_updates("audit_event", APPEND_ONLY)]
