"""xr_gateway — see ARCHITECTURE.md for what lives here."""
