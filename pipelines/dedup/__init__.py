"""Global de-duplication across workers and runs (`vlforge dedup`)."""
