"""Reports: pure functions from run records to JSON and Markdown."""
