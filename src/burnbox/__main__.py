from burnbox.cli import main

raise SystemExit(main())
