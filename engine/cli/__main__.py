import sys

from zhixing.engine.cli import main

sys.exit(main())
