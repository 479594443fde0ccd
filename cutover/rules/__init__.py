"""Procmail -> Sieve: the converter (convert.py), the regex dialect (regex.py) and the
differential verifier that runs both for real (differential.py)."""
