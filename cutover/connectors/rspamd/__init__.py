"""rspamd as Postfix's milter: per-domain settings and the quarantine Sieve script."""
