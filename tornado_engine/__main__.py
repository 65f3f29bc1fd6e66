import sys

from tornado_engine.cli import main

sys.exit(main())
