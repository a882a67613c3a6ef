"""rating: citizens rate the service they received (a ticket served at a counter, a dossier
returned), and the ward's satisfaction is tallied per officer, counter and ward, and ranked
across wards twice a year."""
