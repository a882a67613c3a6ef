"""notify: SMS to citizens when their dossier moves, and ward broadcasts to groups."""
