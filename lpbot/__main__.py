import sys

from lpbot.cli import main

sys.exit(main())
