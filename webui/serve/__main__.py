"""`python -m webui.serve`: see webui/serve/cli.py."""
from webui.serve.cli import main

raise SystemExit(main())
