"""The application around the domain: extensions, configuration, hardening, error pages,
the domain's runtime, the scheduler and the command line. portal.py puts them together."""
