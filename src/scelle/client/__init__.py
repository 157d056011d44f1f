"""The typed HTTP client of the platform API: what the command line talks to."""
