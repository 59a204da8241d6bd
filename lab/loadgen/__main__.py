import sys

from .loadgen import main

sys.exit(main())
