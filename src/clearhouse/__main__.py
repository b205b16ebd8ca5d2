from clearhouse.cli import main

raise SystemExit(main())
