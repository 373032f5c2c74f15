"""One module per `rvlf` sub-command; each exposes `register(subparsers)`."""
