"""Built-in target profiles (TOML data files)."""
