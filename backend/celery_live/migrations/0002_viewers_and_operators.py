"""The groups login mode hands out: viewers watch; operators also launch, revoke, terminate
and re-run.

Written out here rather than read from `celery_live.access.GROUPS`: a migration records
what it did, and a later change of the groups is a migration of its own
(tests/celery_live/test_groups.py checks the two agree).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = {
    "viewers": ["view_run"],
    "operators": ["view_run", "launch_run", "control_run"],
}


def make_groups(apps, schema_editor):
    # Django creates permissions after the whole `migrate` (post_migrate); a fresh database
    # has none yet, so make this app's now. (The migration state's app config has no
    # models module, which create_permissions takes for "no models".)
    app_config = apps.get_app_config("celery_live")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    db = schema_editor.connection.alias
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.using(db).get_or_create(name=name)
        permissions = Permission.objects.using(db).filter(
            content_type__app_label="celery_live", codename__in=codenames
        )
        group.permissions.add(*permissions)


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("celery_live", "0001_runs_and_events"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(make_groups, remove_groups)]
