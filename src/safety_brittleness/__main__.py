import sys

from safety_brittleness.cli import main

sys.exit(main())
