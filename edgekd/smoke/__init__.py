"""On-device smoke tests: ``bundle`` writes, runs and unpacks bundles; ``run_smoke.py`` is the runner that
travels in every bundle (standard library + numpy + the device's runtime; never imports edgekd)."""
