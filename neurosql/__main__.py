from neurosql.cli import main

raise SystemExit(main())
