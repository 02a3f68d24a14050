import sys

from kmrec_gpu.cli import main

sys.exit(main())
