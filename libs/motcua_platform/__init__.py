"""The one-machine platform: the motcua command, the launcher, a ward office (edge), the
embedded database, the combined API server, demo data and the day simulator. It may import
the services; the services and motcua_common never import it."""
