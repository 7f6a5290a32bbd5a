"""Portico's domain: models, links, sessions, mail and audit. No Flask requests here."""
