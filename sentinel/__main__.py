from sentinel.cli import main
import sys
sys.exit(main())
