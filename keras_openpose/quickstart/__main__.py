"""``python -m keras_openpose.quickstart`` (``make quickstart``): see ``--help``."""
from ..cli.deploy import quickstart_main

quickstart_main()
