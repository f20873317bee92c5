"""vlforge model package."""
