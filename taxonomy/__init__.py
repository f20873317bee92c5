"""vlforge taxonomy package."""
