"""jobs/spark — see ARCHITECTURE.md for what lives here."""
