"""Background workers: in the web process on the embedded default, `colloque worker` otherwise."""
