import sys

from riverguard.cli import main

sys.exit(main())
