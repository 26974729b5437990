import sys

from signdigits.cli import main

sys.exit(main())
