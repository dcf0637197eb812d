"""``python -m cso``."""
import sys

from cso.main import main

sys.exit(main())
