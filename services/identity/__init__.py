"""identity: e-citizen accounts, officers, credentials, wards and their populations."""
