"""vlforge training package."""
