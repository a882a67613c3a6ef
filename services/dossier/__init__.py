"""The dossier service: the procedure catalog, dossiers (hồ sơ) and their workflow, and the
working-day calendar that sets each dossier's due date (ngày hẹn trả kết quả)."""
