"""Training recipes for the three stages and the shared loop."""
