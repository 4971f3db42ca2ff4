"""`python -m celery_live.standalone`: the `celery-live` command."""

import sys

from celery_live.standalone.cli import main

sys.exit(main())
